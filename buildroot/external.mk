include $(sort $(wildcard $(BR2_EXTERNAL_PORTAL_PATH)/package/*/*.mk))
