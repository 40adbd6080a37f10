//! PID 1's side of an upgrade: on each boot of the disk form, say which
//! slot runs and why; on the one-time boot of a new slot, wait for the
//! agent's health file and then make the slot the loader's default, or
//! ask for a reboot (back to the old default) when the deadline passes.

use super::{decide, loader_default, with_default, BootState, Pending, Slot};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// init.json's `slots`: where the boot facts are, and the deadline.
#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlotsConfig {
    /// The mounted ESP.
    #[serde(default = "default_esp")]
    pub esp: PathBuf,
    /// Seconds a slot on trial has to report a healthy agent.
    #[serde(default = "default_confirm")]
    pub confirm_secs: u64,
    /// Written by the agent after its first pass with no errors.
    #[serde(default = "default_health")]
    pub health_file: PathBuf,
    /// /perm/upgrade.json, written by `portal upgrade`.
    #[serde(default = "default_record")]
    pub record: PathBuf,
}

fn default_esp() -> PathBuf {
    "/boot".into()
}
fn default_confirm() -> u64 {
    120
}
fn default_health() -> PathBuf {
    "/run/portal/healthy".into()
}
fn default_record() -> PathBuf {
    "/perm/upgrade.json".into()
}

pub struct Trial {
    pub slot: Slot,
    deadline: Instant,
    cfg: SlotsConfig,
}

pub enum Step {
    Wait,
    Confirmed(String),
    Failed(String),
}

/// What this boot is, as lines for the console, and the trial if any.
pub fn on_boot(cfg: &SlotsConfig, cmdline: &str) -> (Option<Trial>, Vec<String>) {
    let conf_path = cfg.esp.join("loader/loader.conf");
    let conf = std::fs::read_to_string(&conf_path).unwrap_or_default();
    let pending: Option<Pending> = std::fs::read_to_string(&cfg.record)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    match decide(super::booted(cmdline), loader_default(&conf), pending) {
        BootState::Normal => (
            None,
            vec![format!("running slot {}, the default", slot_of(cmdline))],
        ),
        BootState::Trial(slot) => {
            let trial = Trial {
                slot,
                deadline: Instant::now() + Duration::from_secs(cfg.confirm_secs),
                cfg: cfg.clone(),
            };
            let msg = format!(
                "slot {} on trial: it becomes the default once the agent reports a healthy pass, within {} s; otherwise a reboot returns to slot {}",
                slot.name(),
                cfg.confirm_secs,
                slot.other().name()
            );
            (Some(trial), vec![msg])
        }
        BootState::RolledBack(p) => {
            // Reported once: the record moves aside for whoever looks later.
            let _ = std::fs::rename(&cfg.record, cfg.record.with_extension("failed.json"));
            (
                None,
                vec![format!(
                    "the upgrade to slot {} ({}) did not confirm: running slot {} again (rolled back)",
                    p.to.name(),
                    p.version,
                    p.from.name()
                )],
            )
        }
        BootState::Unknown(why) => (None, vec![format!("A/B upgrades unavailable: {why}")]),
    }
}

fn slot_of(cmdline: &str) -> &'static str {
    super::booted(cmdline).map(Slot::name).unwrap_or("?")
}

impl Trial {
    pub fn poll(&self) -> Step {
        if self.cfg.health_file.exists() {
            return match confirm(&self.cfg, self.slot) {
                Ok(()) => Step::Confirmed(format!(
                    "slot {} confirmed: the agent is healthy; it is now the default",
                    self.slot.name()
                )),
                // Not the default means the next boot is the old slot
                // anyway: reboot into it now rather than run unconfirmed.
                Err(e) => Step::Failed(format!(
                    "slot {} is healthy but could not be made the default ({e}): rebooting into slot {}",
                    self.slot.name(),
                    self.slot.other().name()
                )),
            };
        }
        if Instant::now() >= self.deadline {
            return Step::Failed(format!(
                "slot {}: no healthy pass from the agent within {} s: rebooting into slot {}",
                self.slot.name(),
                self.cfg.confirm_secs,
                self.slot.other().name()
            ));
        }
        Step::Wait
    }
}

/// loader.conf's default becomes `slot` (a new file renamed over the old:
/// the ESP holds either the old or the new text), then the record goes.
fn confirm(cfg: &SlotsConfig, slot: Slot) -> Result<(), String> {
    let path = cfg.esp.join("loader/loader.conf");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    crate::state::write_atomic_on_fat(&path, with_default(&text, slot).as_bytes())?;
    let _ = std::fs::remove_file(&cfg.record);
    Ok(())
}
