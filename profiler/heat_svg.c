/* The profile as an SVG: a heat map (one row per layer, neurons or experts
 * averaged into at most MAX_COLUMNS columns, colour on a log scale of the
 * activity rate) and the per-layer coverage curves. Plain SVG 1.1, no
 * scripts, so any browser or viewer shows it. */
#include "heat_svg.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile_stats.h"

#define MAX_COLUMNS 256
#define HEAT_X 70.0
#define HEAT_W 560.0
#define TOP 60.0
#define CURVE_X 700.0
#define CURVE_W 300.0
#define CURVE_POINTS 101
#define LOG_FLOOR (-4.0) /* rates below 1e-4 get the coldest colour */

/* A perceptual ramp (viridis-like stops), t in [0, 1]. */
static void ramp(double t, int rgb[3]) {
    static const int stops[][3] = {{68, 1, 84},    {59, 82, 139},  {33, 145, 140},
                                   {94, 201, 98},  {253, 231, 37}};
    const int n = (int)(sizeof stops / sizeof stops[0]);
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double x = t * (n - 1);
    int i = (int)x < n - 1 ? (int)x : n - 2;
    double f = x - i;
    for (int c = 0; c < 3; c++) rgb[c] = (int)lround(stops[i][c] + f * (stops[i + 1][c] - stops[i][c]));
}

static double heat_t(double rate) {
    double lg = rate > 0 ? log10(rate) : LOG_FLOOR;
    return (lg - LOG_FLOOR) / -LOG_FLOOR;
}

static void xml_text(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t') fputc(*s, f);
        }
    }
}

/* One heat-map row: rates averaged into columns. */
static void heat_row(FILE *f, const double *r, int64_t n, double y, double h) {
    int64_t cols = n < MAX_COLUMNS ? n : MAX_COLUMNS;
    double w = HEAT_W / (double)cols;
    for (int64_t c = 0; c < cols; c++) {
        int64_t b = c * n / cols, e = (c + 1) * n / cols;
        double sum = 0;
        for (int64_t i = b; i < e; i++) sum += r[i];
        int rgb[3];
        ramp(heat_t(sum / (double)(e - b)), rgb);
        fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#%02x%02x%02x\"/>\n",
                HEAT_X + (double)c * w, y, w + 0.05, h, rgb[0], rgb[1], rgb[2]);
    }
}

clv_status clv_profile_write_svg(const clv_profile *p, const char *path) {
    int64_t L = p->n_layer;
    double row_h = L <= 20 ? 16.0 : L <= 100 ? 320.0 / (double)L : 3.2;
    double heat_h = row_h * (double)L;
    double curve_h = CURVE_W;
    double height = TOP + fmax(heat_h, curve_h) + 110;
    FILE *f = fopen(path, "w");
    if (!f) return clv_fail(CLV_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1040\" height=\"%.0f\" "
               "font-family=\"sans-serif\" font-size=\"11\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            height);
    fputs("<text x=\"10\" y=\"20\" font-size=\"14\">", f);
    xml_text(f, p->model_name[0] ? p->model_name : p->arch);
    fprintf(f, " (%s): %lld tokens", p->arch, (long long)p->n_tokens);
    if (p->sparsity > 0) fprintf(f, ", thresholds for %.0f%% sparsity", 100.0 * p->sparsity);
    fputs("</text>\n", f);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\">activity per neuron / expert (index order; colour: rate, log scale)</text>\n",
            HEAT_X, TOP - 8);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\">share of activations covered by the hottest x%% of units</text>\n",
            CURVE_X, TOP - 8);

    double *curve = malloc(CURVE_POINTS * sizeof *curve);
    clv_status st = curve ? CLV_OK : clv_fail(CLV_ERR_NOMEM, "out of memory");
    /* heat map */
    for (int64_t il = 0; il < L && !st; il++) {
        double y = TOP + row_h * (double)il;
        int64_t n = 0;
        const clv_profile_layer *l = &p->layers[il];
        double *r = l->n_ff > 0 ? clv_profile_neuron_rates(p, il, &n) : clv_profile_expert_rates(p, il, &n);
        if (!r && (l->n_ff > 0 || l->n_expert > 0)) {
            st = clv_fail(CLV_ERR_NOMEM, "out of memory");
            break;
        }
        if (r) heat_row(f, r, n, y, row_h);
        if (row_h >= 8 || il % 10 == 0)
            fprintf(f, "<text x=\"%.0f\" y=\"%.2f\" text-anchor=\"end\">%s %lld</text>\n", HEAT_X - 6,
                    y + fmin(row_h, 12.0) - 2, l->n_ff > 0 ? "ffn" : "moe", (long long)il);
        /* coverage curve of the same layer, coloured by depth */
        if (r) {
            clv_profile_coverage(r, n, curve, CURVE_POINTS);
            int rgb[3];
            ramp(L > 1 ? (double)il / (double)(L - 1) : 0.0, rgb);
            fprintf(f, "<polyline fill=\"none\" stroke=\"#%02x%02x%02x\" stroke-width=\"1.2\" points=\"", rgb[0], rgb[1],
                    rgb[2]);
            for (int i = 0; i < CURVE_POINTS; i++)
                fprintf(f, "%.1f,%.1f ", CURVE_X + CURVE_W * i / (CURVE_POINTS - 1), TOP + curve_h * (1 - curve[i]));
            fprintf(f, "\"><title>layer %lld</title></polyline>\n", (long long)il);
        }
        free(r);
    }
    /* colour bar of the heat map */
    double bar_y = TOP + heat_h + 20;
    for (int i = 0; i < 100; i++) {
        int rgb[3];
        ramp(i / 99.0, rgb);
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"3.1\" height=\"10\" fill=\"#%02x%02x%02x\"/>\n", HEAT_X + 3 * i,
                bar_y, rgb[0], rgb[1], rgb[2]);
    }
    for (int d = 0; d <= 4; d++)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", HEAT_X + 300.0 * d / 4, bar_y + 24,
                (const char *[]){"&lt;1e-4", "1e-3", "0.01", "0.1", "1"}[d]);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">share of tokens in which a unit is active</text>\n", HEAT_X + 320, bar_y + 9);
    /* coverage axes: frame, diagonal (no skew), 10% mark, ticks */
    fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#444\"/>\n", CURVE_X,
            TOP, CURVE_W, curve_h);
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#aaa\" stroke-dasharray=\"4 3\"/>\n",
            CURVE_X, TOP + curve_h, CURVE_X + CURVE_W, TOP);
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#ccc\"/>\n", CURVE_X + CURVE_W * 0.1, TOP,
            CURVE_X + CURVE_W * 0.1, TOP + curve_h);
    for (int d = 0; d <= 4; d++) {
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d%%</text>\n", CURVE_X + CURVE_W * d / 4,
                TOP + curve_h + 14, 25 * d);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%d%%</text>\n", CURVE_X - 4,
                TOP + curve_h * (1 - d / 4.0) + 4, 25 * d);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">hottest units (share of the layer)</text>\n",
            CURVE_X + CURVE_W / 2, TOP + curve_h + 30);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">line colour: layer depth (first dark, last light)</text>\n", CURVE_X,
            TOP + curve_h + 46);
    fputs("</svg>\n", f);
    free(curve);
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0) bad = true;
    if (!st && bad) st = clv_fail(CLV_ERR_IO, "%s: write failed", path);
    if (st) remove(path);
    return st;
}
