//! The training engine: a decoder (Llama, Mistral, Qwen2, Gemma, Gemma 2) written for
//! backpropagation, LoRA adapters in PEFT's layout, and the training step.
//!
//! candle's stock models cannot be fine-tuned (fused ops without a backward, last-position logits
//! only), so the decoder here is built from the ops in [`ops`], each with a hand-written backward.

pub mod attention;
pub mod batch;
pub mod blas;
pub mod checkpoint;
pub mod config;
pub mod device;
pub mod error;
pub mod fused;
pub mod generate;
pub mod gguf_write;
pub mod lora;
pub mod merge;
pub mod model;
pub mod nf4;
pub mod ops;
pub mod optim;
pub mod plan;
pub mod policy;
pub mod quant;
pub mod rng;
pub mod run;
pub mod schedule;
pub mod settings;
pub mod settings_file;
pub mod train;
pub mod weights;

pub use config::{Architecture, ModelConfig};
pub use error::{Error, Result};
pub use lora::{Adapter, LoraConfig, Target};
pub use model::{Decoder, KvCache, LoraCtx};
pub use weights::ModelFiles;
