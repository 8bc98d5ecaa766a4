"""LoRA fine-tuning: threaded data pipeline, training loop, DDP."""
