"""OpenRLHF 0.11.2 engine: MT-GRPO on Ray + DeepSpeed + vLLM, extended by subclassing (docs/openrlhf.md)."""
