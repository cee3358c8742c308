//! The notebook's first cell: `raw_datasets = load_dataset("glue", "mrpc")`.
//!
//! `cargo run -p examples --example load_mrpc -- ../shared/data/glue` reads local GLUE TSV;
//! with no argument it reads `nyu-mll/glue` from the Hub.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let source = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "glue".to_string());
    let raw_datasets = glue_data::load_dataset(&source, "mrpc")?;
    println!("{raw_datasets}");
    let train = raw_datasets.split("train")?;
    if let Some(row) = train.row(0) {
        println!("{row:?}");
    }
    let metric = ft_metrics::glue_metric("mrpc")?;
    println!("metric keys: {:?}", metric.keys());
    Ok(())
}
