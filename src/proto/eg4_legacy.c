/* SPDX-License-Identifier: MIT */
/* eg4_legacy.c - EG4 legacy 7E ... 0D protocol: checksum, framing, status decoding (README §2). */
#include "eg4_legacy.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "cursor.h"

/*
 * Indices into eg4_legacy_readings. The table is written with designated initializers on these,
 * so the decoder stores by index (no key lookups per poll) and the two cannot drift apart.
 */
enum {
    R_PACK_VOLTAGE,
    R_CURRENT,
    R_PACK_POWER,
    R_ENERGY_CHARGED,
    R_ENERGY_DISCHARGED,
    R_SOC,
    R_SOH,
    R_CAPACITY,
    R_CYCLES,
    R_TEMP1,
    R_CELL1 = R_TEMP1 + 6,
    R_CELL_MIN = R_CELL1 + EG4_LEGACY_MAX_CELLS,
    R_CELL_MAX,
    R_CELL_DELTA,
    R_CELL_LOWEST,
    R_CELL_HIGHEST,
    R_ALARM_CURRENT_OVER,
    R_ALARM_VOLTAGE_HIGH,
    R_ALARM_VOLTAGE_LOW,
    R_ALARM_TEMP_HIGH_CHG,
    R_ALARM_TEMP_LOW_CHG,
    R_COUNT
};

#define EG4_LEGACY_TEMPS 6u

/* Every reading is SRC_DERIVED: the values come from groups, not from a register image. */
#define DERIVED(key, label, q, prec, icon)                                                         \
    {                                                                                              \
        key, label, q, SRC_DERIVED, 0, 0, prec, 1, 0, icon, NULL, NULL                             \
    }
#define CELL(nn, n)                                                                                \
    [R_CELL1 + (n)-1] = DERIVED("cell_" #nn "_voltage", "Cell " #n " voltage", Q_VOLTAGE, 3,       \
                                "mdi:battery-outline")
/* The script's keys are temperature_1..6, without the zero padding LP4V2 uses. */
#define TEMP(n)                                                                                    \
    [R_TEMP1 + (n)-1] =                                                                            \
        DERIVED("temperature_" #n, "Temperature sensor " #n, Q_TEMPERATURE, 0, "mdi:thermometer")

// clang-format off
const struct reading_def eg4_legacy_readings[] = {
    [R_PACK_VOLTAGE] = DERIVED("pack_voltage", "Pack voltage", Q_VOLTAGE, 2, "mdi:battery-outline"),
    /* "current", not "pack_current": the script's key in active mode. */
    [R_CURRENT] = DERIVED("current", "Pack current", Q_CURRENT, 2, "mdi:current-dc"),
    [R_PACK_POWER] = DERIVED("pack_power", "Pack power", Q_POWER, 0, "mdi:flash"),
    /* Integrated by the poller from pack_power (energy.c), as for LP4V2. */
    [R_ENERGY_CHARGED] = DERIVED("energy_charged_kwh", "Energy charged", Q_ENERGY, 3, "mdi:battery-arrow-up"),
    [R_ENERGY_DISCHARGED] = DERIVED("energy_discharged_kwh", "Energy discharged", Q_ENERGY, 3, "mdi:battery-arrow-down"),
    /* One decimal, as the script rounded it: the pack reports SoC in 0.01 %. */
    [R_SOC] = DERIVED("soc", "State of charge", Q_SOC, 1, NULL),
    [R_SOH] = DERIVED("soh", "State of health", Q_PERCENT, 1, "mdi:battery-heart-variant"),
    /* Group 04 is the full (learned) capacity; the script called it capacity_ah. */
    [R_CAPACITY] = DERIVED("capacity_ah", "Full capacity", Q_CHARGE, 2, "mdi:battery-clock"),
    [R_CYCLES] = DERIVED("cycle_count", "Cycle count", Q_COUNT, 0, "mdi:counter"),
    TEMP(1), TEMP(2), TEMP(3), TEMP(4), TEMP(5), TEMP(6),
    CELL(01, 1), CELL(02, 2), CELL(03, 3), CELL(04, 4), CELL(05, 5), CELL(06, 6),
    CELL(07, 7), CELL(08, 8), CELL(09, 9), CELL(10, 10), CELL(11, 11), CELL(12, 12),
    CELL(13, 13), CELL(14, 14), CELL(15, 15), CELL(16, 16),
    [R_CELL_MIN] = DERIVED("cell_voltage_min", "Cell voltage min", Q_VOLTAGE, 3, "mdi:arrow-down-bold"),
    [R_CELL_MAX] = DERIVED("cell_voltage_max", "Cell voltage max", Q_VOLTAGE, 3, "mdi:arrow-up-bold"),
    [R_CELL_DELTA] = DERIVED("cell_voltage_delta_mv", "Cell voltage delta", Q_VOLTAGE_MV, 0, "mdi:sine-wave"),
    [R_CELL_LOWEST] = DERIVED("cell_lowest", "Lowest cell", Q_NUMBER, 0, "mdi:numeric"),
    [R_CELL_HIGHEST] = DERIVED("cell_highest", "Highest cell", Q_NUMBER, 0, "mdi:numeric"),
    /*
     * Bits 3..7 of the second word of group 06. These meanings are the eg4-battery
     * script's (taken from an upstream reverse-engineered parser); no vendor document
     * confirms them. They are kept so that users' existing entities keep working.
     */
    [R_ALARM_CURRENT_OVER] = DERIVED("alarm_current_over", "Overcurrent alarm", Q_PROBLEM, 0, "mdi:alert-octagon"),
    [R_ALARM_VOLTAGE_HIGH] = DERIVED("alarm_voltage_high", "High voltage alarm", Q_PROBLEM, 0, "mdi:alert"),
    [R_ALARM_VOLTAGE_LOW] = DERIVED("alarm_voltage_low", "Low voltage alarm", Q_PROBLEM, 0, "mdi:alert"),
    [R_ALARM_TEMP_HIGH_CHG] = DERIVED("alarm_temp_high_chg", "High charge temperature alarm", Q_PROBLEM, 0, "mdi:thermometer-alert"),
    [R_ALARM_TEMP_LOW_CHG] = DERIVED("alarm_temp_low_chg", "Low charge temperature alarm", Q_PROBLEM, 0, "mdi:thermometer-alert"),
};
// clang-format on

const size_t eg4_legacy_n_readings = sizeof(eg4_legacy_readings) / sizeof(eg4_legacy_readings[0]);

_Static_assert(sizeof(eg4_legacy_readings) / sizeof(eg4_legacy_readings[0]) == R_COUNT,
               "every reading index has a table entry");

/* Group IDs of a status reply, in the order they must appear. */
enum {
    G_CELLS = 0x01,
    G_CURRENT,
    G_SOC,
    G_CAPACITY,
    G_TEMPS,
    G_ALARMS,
    G_CYCLES,
    G_VOLTAGE,
    G_SOH,
    G_LAST /* 0x0A: meaning unknown; decoding stops after it */
};

/* Group 02 encodes the current with an offset: A = (30000 - raw) / 100. */
#define EG4_LEGACY_CURRENT_ZERO 30000
/* Group 01: bits 15 and 14 are flags on real packs, not part of the mV value. */
#define EG4_LEGACY_CELL_MV_MASK 0x3FFFu
/* Group 05: °C = low byte - 50. */
#define EG4_LEGACY_TEMP_OFFSET 50

uint8_t eg4_legacy_checksum(const uint8_t *buf, size_t n)
{
    uint8_t x = 0, sum = 0;

    for (size_t i = 0; i < n; i++) {
        x ^= buf[i];
        sum = (uint8_t)(sum + buf[i]);
    }
    return x ^ sum;
}

size_t eg4_legacy_build_request(uint8_t addr, uint8_t cmd, uint8_t out[6])
{
    out[0] = EG4_LEGACY_SOI;
    out[1] = addr;
    out[2] = cmd;
    out[3] = 0;
    out[4] = eg4_legacy_checksum(out, 4);
    out[5] = EG4_LEGACY_EOI;
    return EG4_LEGACY_REQUEST_LEN;
}

int eg4_legacy_frame_length(const uint8_t *buf, size_t n)
{
    struct cursor c = cursor_init(buf, n);
    uint8_t soi, hdr, len;

    if (cursor_u8(&c, &soi) < 0)
        return 0;
    if (soi != EG4_LEGACY_SOI)
        return -1;
    /* ADR and CMD are not needed to know the length; LEN is the fourth byte. */
    if (cursor_u8(&c, &hdr) < 0 || cursor_u8(&c, &hdr) < 0 || cursor_u8(&c, &len) < 0)
        return 0;
    return (int)len + (int)EG4_LEGACY_FRAME_MIN;
}

int eg4_legacy_parse_frame(const uint8_t *buf, size_t n, struct eg4_legacy_frame *f)
{
    struct cursor c = cursor_init(buf, n);
    uint8_t soi = 0, addr = 0, cmd = 0, len = 0, chk = 0, eoi = 0;
    const uint8_t *data = NULL;

    memset(f, 0, sizeof(*f));
    if (cursor_u8(&c, &soi) == 0 && soi != EG4_LEGACY_SOI)
        return -EPROTO;
    if (n < EG4_LEGACY_FRAME_MIN)
        return -EMSGSIZE;
    cursor_u8(&c, &addr);
    cursor_u8(&c, &cmd);
    cursor_u8(&c, &len);
    /* Exact length: a short buffer is a truncated reply, a longer one holds stray bytes. */
    if (n != (size_t)len + EG4_LEGACY_FRAME_MIN)
        return -EMSGSIZE;
    cursor_bytes(&c, len, &data);
    cursor_u8(&c, &chk);
    cursor_u8(&c, &eoi);
    if (c.bad)
        return -EMSGSIZE;
    if (eoi != EG4_LEGACY_EOI)
        return -EPROTO;
    if (chk != eg4_legacy_checksum(buf, (size_t)len + 4))
        return -EBADMSG;
    f->addr = addr;
    f->cmd = cmd;
    f->data = data;
    f->len = len;
    return 0;
}

/* What a status reply says, before it becomes readings. */
struct eg4_legacy_status {
    uint16_t cells_mv[EG4_LEGACY_MAX_CELLS];
    unsigned n_cells; /* cells taken from group 01 (at most the wanted count) */
    uint16_t current, soc, capacity, cycles, voltage, soh;
    unsigned have; /* bit g set: the group g word used above was present */
    uint16_t temps[EG4_LEGACY_TEMPS];
    unsigned n_temps;
    uint16_t alarm_word; /* second word of group 06 */
};

#define HAVE(g) (1u << (g))

/* Record word k of group id; words no reading uses are read past and ignored. */
static void eg4_legacy_take(struct eg4_legacy_status *s, uint8_t id, unsigned k, uint16_t w,
                            unsigned want)
{
    uint16_t *first = NULL;

    switch (id) {
    case G_CELLS:
        if (k < want) {
            s->cells_mv[k] = w & EG4_LEGACY_CELL_MV_MASK;
            s->n_cells = k + 1;
        }
        return;
    case G_TEMPS:
        if (k < EG4_LEGACY_TEMPS) {
            s->temps[k] = w;
            s->n_temps = k + 1;
        }
        return;
    case G_ALARMS:
        if (k == 1) {
            s->alarm_word = w;
            s->have |= HAVE(id);
        }
        return;
    case G_CURRENT:
        first = &s->current;
        break;
    case G_SOC:
        first = &s->soc;
        break;
    case G_CAPACITY:
        first = &s->capacity;
        break;
    case G_CYCLES:
        first = &s->cycles;
        break;
    case G_VOLTAGE:
        first = &s->voltage;
        break;
    case G_SOH:
        first = &s->soh;
        break;
    default:
        return;
    }
    if (k == 0) {
        *first = w;
        s->have |= HAVE(id);
    }
}

/*
 * Read groups 01..0A through the cursor into *s. Returns 0, or -EBADMSG when a group
 * is missing, out of order, or claims more words than DATA holds.
 */
static int eg4_legacy_read_groups(struct cursor *c, struct eg4_legacy_status *s,
                                  unsigned want_cells)
{
    for (uint8_t expect = G_CELLS; expect <= G_LAST; expect++) {
        uint8_t id, count;
        uint16_t w;

        if (cursor_u8(c, &id) < 0 || cursor_u8(c, &count) < 0 || id != expect)
            return -EBADMSG;
        /* Checking COUNT against what is left first keeps a lying COUNT from being read. */
        if ((size_t)count * 2 > cursor_left(c))
            return -EBADMSG;
        for (unsigned k = 0; k < count; k++) {
            if (cursor_u16be(c, &w) < 0)
                return -EBADMSG;
            eg4_legacy_take(s, id, k, w, want_cells);
        }
    }
    /* Whatever follows 0x0A (groups 0x0B..0x11 of related BMSes) is not read. */
    return 0;
}

static void eg4_legacy_set(double *values, int i, double v)
{
    values[i] = v;
}

static void eg4_legacy_cells(const struct eg4_legacy_status *s, double *values)
{
    int32_t mv[EG4_LEGACY_MAX_CELLS];
    struct cell_stats st;

    for (unsigned k = 0; k < s->n_cells; k++) {
        eg4_legacy_set(values, R_CELL1 + (int)k, s->cells_mv[k] / 1000.0);
        mv[k] = s->cells_mv[k];
    }
    if (reading_cell_stats(mv, s->n_cells, &st) < 0)
        return;
    eg4_legacy_set(values, R_CELL_MIN, st.min_v);
    eg4_legacy_set(values, R_CELL_MAX, st.max_v);
    eg4_legacy_set(values, R_CELL_DELTA, st.delta_mv);
    eg4_legacy_set(values, R_CELL_LOWEST, st.lowest);
    eg4_legacy_set(values, R_CELL_HIGHEST, st.highest);
}

int eg4_legacy_decode_status(const uint8_t *data, size_t len, unsigned cell_count, double *values)
{
    struct cursor c = cursor_init(data, len);
    struct eg4_legacy_status s;
    unsigned want =
        cell_count == 0 || cell_count > EG4_LEGACY_MAX_CELLS ? EG4_LEGACY_MAX_CELLS : cell_count;

    for (size_t i = 0; i < eg4_legacy_n_readings; i++)
        values[i] = NAN;
    memset(&s, 0, sizeof(s));
    if (eg4_legacy_read_groups(&c, &s, want) < 0)
        return -EBADMSG;

    eg4_legacy_cells(&s, values);
    for (unsigned k = 0; k < s.n_temps; k++)
        eg4_legacy_set(values, R_TEMP1 + (int)k,
                       (int)(s.temps[k] & 0xFFu) - EG4_LEGACY_TEMP_OFFSET);
    if (s.have & HAVE(G_CURRENT))
        eg4_legacy_set(values, R_CURRENT, (EG4_LEGACY_CURRENT_ZERO - (int)s.current) / 100.0);
    if (s.have & HAVE(G_SOC))
        eg4_legacy_set(values, R_SOC, s.soc / 100.0);
    if (s.have & HAVE(G_CAPACITY))
        eg4_legacy_set(values, R_CAPACITY, s.capacity / 100.0);
    if (s.have & HAVE(G_CYCLES))
        eg4_legacy_set(values, R_CYCLES, s.cycles);
    if (s.have & HAVE(G_VOLTAGE))
        eg4_legacy_set(values, R_PACK_VOLTAGE, s.voltage / 100.0);
    if (s.have & HAVE(G_SOH))
        eg4_legacy_set(values, R_SOH, s.soh / 100.0);
    /* From the unrounded reports: 10 mV x 10 mA = 1e-4 W. */
    if ((s.have & HAVE(G_CURRENT)) && (s.have & HAVE(G_VOLTAGE)))
        eg4_legacy_set(values, R_PACK_POWER,
                       s.voltage * (double)(EG4_LEGACY_CURRENT_ZERO - (int)s.current) * 1e-4);
    /* Bits 3..7 of the second word, in the order of the alarm entries of the table. */
    if (s.have & HAVE(G_ALARMS)) {
        for (int b = 3; b <= 7; b++)
            values[R_ALARM_CURRENT_OVER + (b - 3)] = (s.alarm_word >> b) & 1u;
    }
    return 0;
}

int eg4_legacy_decode_firmware(const uint8_t *data, size_t len, char *out, size_t outlen)
{
    struct cursor c = cursor_init(data, len);
    size_t k = 0;
    uint8_t ch;

    if (out == NULL || outlen == 0)
        return -EINVAL;
    while (k + 1 < outlen && cursor_u8(&c, &ch) == 0) {
        /* NUL padding and other control bytes are not part of the version text; leading
         * spaces are skipped as they come so that they take no room from the text. */
        if (ch >= 0x20 && ch < 0x7F && (k > 0 || ch != ' '))
            out[k++] = (char)ch;
    }
    while (k > 0 && out[k - 1] == ' ')
        k--;
    out[k] = '\0';
    return k > 0 ? (int)k : -ENODATA;
}
