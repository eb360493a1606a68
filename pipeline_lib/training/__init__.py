"""Fine-tuning: the loop (loop.py, trained as upstream's transformers.Trainer trains), resumable checkpoints
(checkpoints.py), data parallelism under torchrun (distributed.py)."""
