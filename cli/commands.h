/* Subcommands of the `edgetrain` tool. Each lives in cli/cmd_<name>.c and
 * takes the arguments after its name (argv[0] is the subcommand name).
 * Returns the process exit status: 0 success, 1 failure, 2 usage error. */
#ifndef ET_CLI_COMMANDS_H
#define ET_CLI_COMMANDS_H 1

int cmd_bench(int argc, char **argv);
int cmd_bench_wire(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_infer(int argc, char **argv);
int cmd_infer_agent(int argc, char **argv);
int cmd_bench_stream(int argc, char **argv);
int cmd_bench_flows(int argc, char **argv);
int cmd_bench_plan(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_agent_sim(int argc, char **argv);
int cmd_experiment(int argc, char **argv);

#endif /* ET_CLI_COMMANDS_H */
