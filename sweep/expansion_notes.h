// What a valid sweep expands to that its file most likely did not mean: notes that
// `ablate validate`, `plan` and `submit` print beside the plan, never refusals (a file may
// keep a rule for cells it leaves out for now). Pure; safe from any thread.
#ifndef ABLATE_SWEEP_EXPANSION_NOTES_H_
#define ABLATE_SWEEP_EXPANSION_NOTES_H_

#include <string>
#include <vector>

#include "ablate/v1/sweep.pb.h"
#include "sweep/grid.h"

namespace ablate::sweep::internal {

struct ExpansionNote {
  // The file's key whose place the note goes to ("overrides[1].when", "grid.optimizer[1]"), or
  // empty for a note about cells, whose text then starts "cell LABEL: " and is placed as a
  // cell's problem is (sweep_file.h).
  std::string at;
  std::string text;
};

// The notes of `expansion`, ExpandSweep(spec)'s, in this order:
// - with a baseline, the grid's cells that one factor at a time leaves out, counted, the first
//   three named ("baseline: one factor at a time runs 7 of the grid's 36 cells (...); the 29
//   cells that change two or more do not run: model=tiny attention=dense optimizer=muon
//   context_length=64, ... and 26 more");
// - each override no kept cell meets ("overrides[1].when: no cell ... meets it, so the override
//   changes nothing");
// - each grid value the constraints dropped from every cell that has it ("grid.optimizer:
//   'muon' is in no cell that the constraints keep (constraints[0] drops every cell with it)"),
//   most often a require that names a value the grid lacks;
// - each setting the file gives that no job reads, at each place that gives it
//   ("fixed.decay_fraction: read only by lr_schedule wsd, which no cell uses, so it changes
//   nothing"; attention_args with no NSA cell, compression_kernel or compression_stride with no
//   learned_compression);
// - each `derived:` value for an optimizer no cell uses ("derived.learning_rate.soap: no cell
//   uses optimizer soap, so it changes nothing");
// - a sample.count above the cells the constraints keep;
// - cells that run as an earlier cell's jobs (Expansion::shared_cells), grouped as CellProblems
//   groups problems ("cell attention=dense attention_args.window=128: attention_args.window:
//   dense takes no attention_args, so the cell runs as cell attention=dense
//   attention_args.window=0 does, in its jobs");
// - NSA cells that read every key of their context (NsaReadsEveryKey), grouped by reason as
//   CellProblems groups problems ("cell attention=nsa seed=1: attention_args.window: 512 tokens
//   hold every key of a 256-token context: ... (so do cells attention=nsa seed=2)");
// - a micro_batch_size above a rank's share of the batch (MicroBatchPerRank runs the whole
//   share), at its first cell, with how many more jobs have it.
std::vector<ExpansionNote> ExpansionNotes(const v1::SweepSpec& spec, const Expansion& expansion);

}  // namespace ablate::sweep::internal

#endif  // ABLATE_SWEEP_EXPANSION_NOTES_H_
