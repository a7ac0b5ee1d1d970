"""Sample data made from what ships offline: synthetic lesions in the MNI152 T1 (:mod:`volsam.data.lesions`),
used by the demo, the tests, the benchmarks and fine-tuning."""
