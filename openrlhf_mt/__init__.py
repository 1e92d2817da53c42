"""openrlhf-mt: Multi-Task GRPO (Ramesh et al., ICML 2026) on one machine or on OpenRLHF clusters."""

__version__ = "0.1.0"
