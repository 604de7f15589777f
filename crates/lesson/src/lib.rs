//! hello-lesson: the lesson around the two programs. [`scenario`] runs them traced in
//! small experiments (`cargo xtask demo [SCENARIO]`); [`mod@line`] takes their trace lines
//! apart; [`timeline`] puts both sides' calls in an order where nothing comes before its
//! cause; [`text`] prints that as two columns, and [`page`] draws it as an HTML page
//! with an inline SVG picture.
//!
//! `line`, `timeline`, `text` and `page` are pure; only `scenario` starts processes and
//! opens sockets (through `hello_proto::sys`, traced like the programs).

pub mod line;
pub mod page;
pub mod run;
pub mod scenario;
pub mod text;
pub mod timeline;
