/* placeholder */ typedef int bms_placeholder_lp4v2;
