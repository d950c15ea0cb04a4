/*
 * modelrules.h - admission rules of a LanguageModel's provider config
 * (contract of a rule: admission_rule.h). All are RULE_FIELD rules.
 */
#ifndef LANGOP_MODELRULES_H
#define LANGOP_MODELRULES_H

#include "langop/schema/admission_rule.h"

/** Exactly one of spec.provider and spec.litellmProvider. */
int modelrules_provider_choice(const rule_input_t *in, lo_err_t *err);

/** spec.params carries no credential (they belong in Secrets). */
int modelrules_params_credentials(const rule_input_t *in, lo_err_t *err);

/** The fields a provider cannot work without. */
int modelrules_provider_fields(const rule_input_t *in, lo_err_t *err);

/** Every endpoint is an http(s) URL without userinfo. */
int modelrules_endpoints(const rule_input_t *in, lo_err_t *err);

/** provider custom and spec.litellmParams. */
int modelrules_custom(const rule_input_t *in, lo_err_t *err);

/** spec.upstreams: alternative deployments of the model. */
int modelrules_upstreams(const rule_input_t *in, lo_err_t *err);

#endif
