//! ft-metrics against values computed by scikit-learn and scipy (fixtures/metrics.json, made by
//! fixtures/make_metrics_fixture.py).

use ft_metrics::{
    accuracy, f1, glue_metric, matthews_correlation, pearson, precision, recall, spearman,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    kind: String,
    predictions: Vec<f64>,
    references: Vec<f64>,
    accuracy: Option<f64>,
    f1: Option<f64>,
    precision: Option<f64>,
    recall: Option<f64>,
    matthews_correlation: Option<f64>,
    pearson: Option<f64>,
    spearmanr: Option<f64>,
}

fn fixture() -> Fixture {
    let text = include_str!("fixtures/metrics.json");
    serde_json::from_str(text).expect("metrics.json parses")
}

fn classes(values: &[f64]) -> Vec<i64> {
    values.iter().map(|&v| v as i64).collect()
}

fn assert_close(name: &str, metric: &str, ours: f64, theirs: f64, tolerance: f64) {
    assert!(
        (ours - theirs).abs() <= tolerance,
        "{name}: {metric} = {ours}, reference {theirs}"
    );
}

#[test]
fn class_metrics_match_scikit_learn() {
    let mut checked = 0;
    for case in fixture().cases.iter().filter(|c| c.kind == "classes") {
        let (p, r) = (classes(&case.predictions), classes(&case.references));
        let name = &case.name;
        // Counting metrics come out of a single division: they must be bit-identical.
        assert_eq!(accuracy(&p, &r).unwrap(), case.accuracy.unwrap(), "{name}");
        if let Some(expected) = case.precision {
            assert_eq!(precision(&p, &r).unwrap(), expected, "{name}");
            assert_eq!(recall(&p, &r).unwrap(), case.recall.unwrap(), "{name}");
            // Our harmonic-mean F1 may differ from scikit-learn >= 1.3 by an ulp.
            assert_close(name, "f1", f1(&p, &r).unwrap(), case.f1.unwrap(), 1e-15);
        }
        let mcc = matthews_correlation(&p, &r).unwrap();
        assert_close(name, "mcc", mcc, case.matthews_correlation.unwrap(), 1e-12);
        checked += 1;
    }
    assert_eq!(checked, 8);
}

#[test]
fn correlations_match_scipy() {
    let mut checked = 0;
    for case in fixture().cases.iter().filter(|c| c.kind == "scores") {
        let (p, r) = (&case.predictions, &case.references);
        assert_close(
            &case.name,
            "pearson",
            pearson(p, r).unwrap(),
            case.pearson.unwrap(),
            1e-12,
        );
        let rho = spearman(p, r).unwrap();
        assert_close(&case.name, "spearmanr", rho, case.spearmanr.unwrap(), 1e-12);
        let metrics = glue_metric("stsb").unwrap().compute_scores(p, r).unwrap();
        assert_eq!(metrics["spearmanr"], rho);
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[test]
fn the_notebook_result_is_reproduced_exactly() {
    let fixture = fixture();
    let case = fixture
        .cases
        .iter()
        .find(|c| c.name == "notebook_mrpc")
        .expect("fixture has the notebook case");
    assert_eq!(case.predictions.len(), 408);
    let metrics = glue_metric("mrpc")
        .unwrap()
        .compute(&classes(&case.predictions), &classes(&case.references))
        .unwrap();
    // The notebook printed {'accuracy': 0.8382352941176471, 'f1': 0.8885135135135136}.
    assert_eq!(metrics["accuracy"], 0.8382352941176471);
    assert_eq!(metrics["f1"], 0.8885135135135136);
    assert_eq!(metrics.len(), 2);
}
