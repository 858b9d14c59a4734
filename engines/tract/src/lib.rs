//! Switchyard tract engine: pure-Rust ONNX (tract-onnx) for OCR (PP-OCRv6 det + rec) and voice activity (Silero VAD).
