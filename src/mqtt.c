/* placeholder */ typedef int bms_placeholder_mqtt;
