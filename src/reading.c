/* placeholder */ typedef int bms_placeholder_reading;
