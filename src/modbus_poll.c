/* placeholder */ typedef int bms_placeholder_modbus_poll;
