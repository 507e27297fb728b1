"""Walk-forward tuning of a Strategy's parameters with Optuna: the plan, the workers that run trials on one
persistent study, the finalize step that runs the in-sample winners out of sample and judges the proposal, and a
cheap summary for the controller. See docs/concepts/tuning.md."""
