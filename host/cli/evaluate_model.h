/* `musae evaluate --model ...`: the spliced (in-model) evaluation of an SAE, eval/spliced.h. verb_evaluate
 * hands over to it when --model is given. */
#ifndef MUSAE_CLI_EVALUATE_MODEL_H
#define MUSAE_CLI_EVALUATE_MODEL_H

int evaluate_model_main(int argc, char **argv);
void evaluate_model_usage(FILE *f);

#endif /* MUSAE_CLI_EVALUATE_MODEL_H */
