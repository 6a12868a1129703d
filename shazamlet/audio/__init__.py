"""Audio in: decoding files and capturing the microphone."""
