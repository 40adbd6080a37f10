use super::*;

#[test]
fn slots_from_the_command_line_and_loader_conf() {
    let cmd = "BOOT_IMAGE=/x root=PARTLABEL=portal-root-b rootfstype=squashfs ro console=ttyS0";
    assert_eq!(booted(cmd), Some(Slot::B));
    assert_eq!(booted("root=/dev/vda2 ro"), None);
    assert_eq!(booted("root=PARTLABEL=portal-root-c"), None);
    let conf = "timeout 0\ndefault portal-a.conf\neditor no\n";
    assert_eq!(loader_default(conf), Some(Slot::A));
    assert_eq!(loader_default("timeout 0\n"), None);
    assert_eq!(loader_default("default other.conf\n"), None);
    assert_eq!(
        with_default(conf, Slot::B),
        "timeout 0\ndefault portal-b.conf\neditor no\n"
    );
    assert_eq!(
        with_default("timeout 0", Slot::A),
        "default portal-a.conf\ntimeout 0\n"
    );
    assert_eq!(
        with_default("default portal-a.conf\ndefault portal-a.conf\n", Slot::B),
        "default portal-b.conf\n"
    );
    assert_eq!(Slot::A.other(), Slot::B);
    assert_eq!(
        (Slot::B.root_label(), Slot::B.entry(), Slot::B.esp_dir()),
        (
            "portal-root-b".into(),
            "portal-b.conf".into(),
            "portal-b".into()
        )
    );
}

#[test]
fn the_boot_decision() {
    let pending = |to| Pending {
        from: Slot::A,
        to,
        version: "v2".into(),
    };
    assert_eq!(
        decide(Some(Slot::A), Some(Slot::A), None),
        BootState::Normal
    );
    // The one-shot boot of the new slot: on trial, whatever is recorded.
    assert_eq!(
        decide(Some(Slot::B), Some(Slot::A), Some(pending(Slot::B))),
        BootState::Trial(Slot::B)
    );
    assert_eq!(
        decide(Some(Slot::B), Some(Slot::A), None),
        BootState::Trial(Slot::B)
    );
    // Back on the default with an upgrade to B on record: B did not confirm.
    assert_eq!(
        decide(Some(Slot::A), Some(Slot::A), Some(pending(Slot::B))),
        BootState::RolledBack(pending(Slot::B))
    );
    // B confirmed (now the default) before the record was cleared.
    assert_eq!(
        decide(Some(Slot::B), Some(Slot::B), Some(pending(Slot::B))),
        BootState::Normal
    );
    assert!(matches!(
        decide(None, Some(Slot::A), None),
        BootState::Unknown(_)
    ));
    assert!(matches!(
        decide(Some(Slot::A), None, None),
        BootState::Unknown(_)
    ));
}

fn manifest_text(board: &str, files: &[(&str, &str)]) -> String {
    let files: Vec<String> = files
        .iter()
        .map(|(n, h)| format!(r#"{{"name": "{n}", "size": 1, "sha256": "{h}"}}"#))
        .collect();
    format!(
        r#"{{"board": "{board}", "version": "v2", "files": [{}]}}"#,
        files.join(",")
    )
}

#[test]
fn manifests() {
    let h = "a".repeat(64);
    let good = [
        ("root.sqfs", h.as_str()),
        ("vmlinuz", h.as_str()),
        ("boot.cpio", h.as_str()),
    ];
    let m = parse_manifest(&manifest_text("t8pro", &good), "t8pro").unwrap();
    assert_eq!((m.version.as_str(), m.files.len()), ("v2", 3));
    let err = |text: String| parse_manifest(&text, "t8pro").unwrap_err();
    assert!(err(manifest_text("erx", &good)).contains("for board \"erx\""));
    assert!(err(manifest_text("t8pro", &good[..2])).contains("needs boot.cpio"));
    let dup = [good[0], good[1], good[2], good[2]];
    assert!(err(manifest_text("t8pro", &dup)).contains("needs boot.cpio exactly once"));
    let odd = [good[0], good[1], good[2], ("evil", h.as_str())];
    assert!(err(manifest_text("t8pro", &odd)).contains("files[3].name"));
    let short = [good[0], good[1], ("boot.cpio", "abc")];
    assert!(err(manifest_text("t8pro", &short)).contains("files[2].sha256"));
    assert!(err("{".into()).contains("manifest.json"));
}

/// A ustar header as GNU tar writes one.
fn header(name: &str, size: u64, typeflag: u8) -> [u8; 512] {
    let mut b = [0u8; 512];
    b[..name.len()].copy_from_slice(name.as_bytes());
    b[100..108].copy_from_slice(b"0000644\0");
    b[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    b[156] = typeflag;
    b[257..263].copy_from_slice(b"ustar\0");
    b[148..156].copy_from_slice(b"        ");
    let sum: u32 = b.iter().map(|&x| x as u32).sum();
    b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    b
}

#[test]
fn tar_headers() {
    assert_eq!(
        tar_header(&header("./root.sqfs", 12345, b'0')).unwrap(),
        Some(("root.sqfs".into(), 12345))
    );
    assert_eq!(tar_header(&[0u8; 512]).unwrap(), None);
    let mut bad = header("vmlinuz", 1, b'0');
    bad[0] = b'w';
    assert!(tar_header(&bad).unwrap_err().contains("checksum"));
    assert!(tar_header(&header("dir", 0, b'5'))
        .unwrap_err()
        .contains("plain files"));
}

#[test]
fn efi_variable_encoding() {
    assert_eq!(
        efi_string_var("ab"),
        vec![7, 0, 0, 0, b'a', 0, b'b', 0, 0, 0]
    );
    assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
}
