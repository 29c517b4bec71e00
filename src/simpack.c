/* placeholder */ typedef int bms_placeholder_simpack;
