//! Evaluators that judge the notebooks' results without being the homework's answer:
//! a digit classifier for MNIST features, the Fréchet distance, a classifier
//! two-sample test, and a captcha OCR trained on real captchas; `cache` is how the
//! trained evaluators keep their weights; `background` trains the captcha readers in a
//! child process while a notebook goes on.

pub mod background;
pub mod cache;
pub mod digits;
pub mod frechet;
pub mod ocr;
pub mod reader;
pub mod two_sample;
