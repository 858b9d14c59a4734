//! Switchyard speech-to-text: supervises the whisper.cpp worker process and hands it audio through shared memory.
