"""The tasks for language models: text renderings of the small models' own examples (render), items, scoring and
rewards in the LLM tooling's conventions (items), where answers come from (backends), `eval-llm` with the full
protocol (evaluate) and a task folder for lm-evaluation-harness (lm_eval)."""
