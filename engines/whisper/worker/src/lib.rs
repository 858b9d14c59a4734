//! Switchyard whisper worker: the separate process that runs whisper.cpp (whisper-rs), which cannot share a binary with llama.cpp.
