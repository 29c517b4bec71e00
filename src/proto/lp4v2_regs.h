/* SPDX-License-Identifier: MIT */
/* lp4v2_regs.h - holding register numbers of the EG4 LifePower4 v2 / EG4-LL Modbus map. */
#ifndef BMS_LP4V2_REGS_H
#define BMS_LP4V2_REGS_H

/*
 * From "EG4-LL Battery MODBUS Protocol V01.06" (2017), §3 Register. Function 0x03,
 * big-endian 16-bit registers. Where the vendor's table and the eg4-battery script
 * disagree (registers 18 and up) the vendor's table is used, except for its labels of
 * registers 19 and 20, which real frames show to be swapped.
 */
enum lp4v2_reg {
    LP4V2_REG_VOLTAGE = 0,   /* u16, 10 mV */
    LP4V2_REG_CURRENT = 1,   /* s16, 10 mA, positive = charging */
    LP4V2_REG_CELL1 = 2,     /* u16 mV, cells 1..16 in 2..17 */
    LP4V2_REG_TEMP_PCB = 18, /* s16, °C */
    /* The vendor's table labels 19 "Temp Avg" and 20 "Temp Max"; real replies read 19 >= 20
     * (the eg4-battery sample: 21 and 20 °C; another EG4-LL capture: 27 and 24 °C with its
     * cell sensors at 24 °C), and a maximum is never below an average: the labels are
     * swapped (protocols/README.md §1). */
    LP4V2_REG_TEMP_MAX = 19,   /* s16, °C: maximum temperature (vendor label "Temp Avg") */
    LP4V2_REG_TEMP_AVG = 20,   /* s16, °C: average temperature (vendor label "Temp Max") */
    LP4V2_REG_REMAINING = 21,  /* u16, Ah */
    LP4V2_REG_MAX_CHARGE = 22, /* u16, A: maximum charging current */
    LP4V2_REG_SOH = 23,        /* u16, % */
    LP4V2_REG_SOC = 24,        /* u16, % */
    LP4V2_REG_STATUS = 25,     /* low byte: 0 standby 1 charging 2 discharging 4 protect
                                  8 charging limit; bit 15 "active" / "heater on" */
    LP4V2_REG_WARNING = 26,    /* bit field, see lp4v2.c */
    LP4V2_REG_PROTECTION = 27, /* bit field */
    LP4V2_REG_ERROR = 28,      /* bit field: 0 voltage 1 temperature 2 current 4 unbalance */
    LP4V2_REG_CYCLES = 29,     /* u32 (29 high word, 30 low word) */
    LP4V2_REG_FULL_CAP = 31,   /* u32 (31 high, 32 low), mAs; Ah = mAs / 3 600 000 */
    LP4V2_REG_TEMPS = 33,      /* 6 sensors, one byte each, °C, high byte first, 33..35 */
    LP4V2_REG_CELL_COUNT = 36, /* u16 */
    LP4V2_REG_DESIGN_CAP = 37, /* u16, 0.1 Ah */
    LP4V2_REG_BALANCE = 38,    /* bit n = cell n+1 balancing */
    LP4V2_REG_MODEL = 105,     /* 24 ASCII bytes, 105..116 */
    LP4V2_REG_FIRMWARE = 117,  /* 6 ASCII bytes, 117..119, e.g. "V03R04" */
    LP4V2_REG_SERIAL = 120,    /* 16 ASCII bytes, 120..127 */
};

#define LP4V2_CELLS         16  /* cell voltage registers 2..17 */
#define LP4V2_TEMP_SENSORS  6   /* registers 33..35 */
#define LP4V2_BLOCK_START   0   /* the periodic read: 47 registers from 0 */
#define LP4V2_BLOCK_COUNT   47  /* 39..46 are undocumented: published raw only */
#define LP4V2_DOC_COUNT     39  /* registers 0..38 are documented */
#define LP4V2_ID_START      105 /* the identity read: 23 registers 105..127 */
#define LP4V2_ID_COUNT      23
#define LP4V2_IMAGE_SIZE    128  /* a full register image 0..127 */
#define LP4V2_DEFAULT_SLAVE 0x40 /* auto-addressing LP4V2 packs on their RS485 port */

#endif
