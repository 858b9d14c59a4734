#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used, missing_docs)]
use std::collections::BTreeMap;
use std::time::Instant;
use tract_onnx::prelude::*;

fn main() {
    let path = "/root/.cache/switchyard/models/pp-ocrv6-tiny/PP-OCRv6_rec_tiny.onnx";
    let parse = || onnx().with_ignore_output_shapes(true).with_ignore_value_info(true).model_for_path(path).unwrap();
    let m = parse();
    let mut ops = BTreeMap::new();
    for n in m.nodes() { *ops.entry(n.op.name().to_string()).or_insert(0) += 1; }
    println!("{ops:?}");
    let build = |b: usize, w: usize| {
        let mut mm = parse();
        mm.set_input_fact(0, f32::fact([b, 3, 48, w]).into()).unwrap();
        mm.into_typed().unwrap().into_optimized().unwrap().into_runnable().unwrap()
    };
    let run = |plan: &Arc<TypedRunnableModel>, b: usize, w: usize| {
        let input = Tensor::zero::<f32>(&[b, 3, 48, w]).unwrap();
        let _ = plan.run(tvec![input.clone().into()]).unwrap();
        let t = Instant::now();
        let n = 4;
        for _ in 0..n { let _ = plan.run(tvec![input.clone().into()]).unwrap(); }
        t.elapsed().as_secs_f64() * 1e3 / n as f64
    };
    for w in [320, 512, 832] {
        for b in [1, 2, 3, 6] {
            let p = build(b, w);
            let ms = run(&p, b, w);
            println!("b={b} w={w}: {ms:.1} ms/run, {:.1} ms/line", ms / b as f64);
        }
    }
    let p = build(1, 832);
    let o = p.run(tvec![Tensor::zero::<f32>(&[1,3,48,832]).unwrap().into()]).unwrap();
    println!("out shape {:?}", o[0].shape());
}
