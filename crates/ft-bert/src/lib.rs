//! BERT with its task heads, and Hugging Face checkpoints in and out.
