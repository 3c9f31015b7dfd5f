// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

/// Head scoring: every criterion, the criterion concept, evidence, the registry.

#include "mhaprune/criteria/any_criterion.hpp"
#include "mhaprune/criteria/concept.hpp"
#include "mhaprune/criteria/element_wise.hpp"
#include "mhaprune/criteria/evidence.hpp"
#include "mhaprune/criteria/fisher.hpp"
#include "mhaprune/criteria/fluctuation.hpp"
#include "mhaprune/criteria/gate_importance.hpp"
#include "mhaprune/criteria/gradient.hpp"
#include "mhaprune/criteria/gradient_view.hpp"
#include "mhaprune/criteria/group_scores.hpp"
#include "mhaprune/criteria/lambda_criterion.hpp"
#include "mhaprune/criteria/magnitude.hpp"
#include "mhaprune/criteria/obs.hpp"
#include "mhaprune/criteria/output_channels.hpp"
#include "mhaprune/criteria/random.hpp"
#include "mhaprune/criteria/reduction.hpp"
#include "mhaprune/criteria/registry.hpp"
#include "mhaprune/criteria/role_weights.hpp"
#include "mhaprune/criteria/snip.hpp"
#include "mhaprune/criteria/snip_momentum.hpp"
#include "mhaprune/criteria/taylor.hpp"
#include "mhaprune/criteria/wanda_sp.hpp"
#include "mhaprune/error.hpp"
