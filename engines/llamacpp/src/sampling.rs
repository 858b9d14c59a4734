//! Building a llama.cpp sampler chain from OpenAI-style sampling parameters.

use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use switchyard_core::SamplingParams;

/// How many recent tokens the presence/frequency penalties look at.
const PENALTY_WINDOW: i32 = 256;

/// llama.cpp's "pick a random seed" value.
const RANDOM_SEED: u32 = 0xFFFF_FFFF;

/// A sampler chain for one sequence. Penalties come first (they edit logits), then either greedy
/// selection (temperature 0) or top-k → top-p → min-p → temperature → seeded draw.
pub fn build_sampler(model: &LlamaModel, params: &SamplingParams) -> LlamaSampler {
    let mut chain = Vec::new();
    if params.presence_penalty != 0.0 || params.frequency_penalty != 0.0 {
        chain.push(LlamaSampler::penalties(
            model.n_vocab(),
            PENALTY_WINDOW,
            1.0,
            params.frequency_penalty,
            params.presence_penalty,
        ));
    }
    if params.is_greedy() {
        chain.push(LlamaSampler::greedy());
    } else {
        if params.top_k > 0 {
            chain.push(LlamaSampler::top_k(params.top_k));
        }
        if params.top_p < 1.0 {
            chain.push(LlamaSampler::top_p(params.top_p, 1));
        }
        if params.min_p > 0.0 {
            chain.push(LlamaSampler::min_p(params.min_p, 1));
        }
        chain.push(LlamaSampler::temp(params.temperature));
        chain.push(LlamaSampler::dist(params.seed.unwrap_or(RANDOM_SEED)));
    }
    LlamaSampler::chain_simple(chain)
}
