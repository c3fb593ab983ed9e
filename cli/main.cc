// ablate: the user's command line for Ablate sweeps. See cli/app.h.
#include "cli/app.h"

int main(int argc, char** argv) { return ablate::cli::RunCli(argc, argv); }
