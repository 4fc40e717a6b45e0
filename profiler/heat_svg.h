/* A picture of a profile: per layer, the heat of every neuron or expert (in
 * index order, so hot spots show where they are) and the power-law curve (the
 * share of all activations covered by the hottest x% of units). */
#ifndef CLV_HEAT_SVG_H
#define CLV_HEAT_SVG_H

#include "profile.h"

/* Writes an SVG to path (CLV_ERR_IO naming the path when it cannot). */
clv_status clv_profile_write_svg(const clv_profile *p, const char *path);

#endif
