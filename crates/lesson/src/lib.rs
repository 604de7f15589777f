//! hello-lesson: the lesson around the two programs. [`scenario`] runs them traced in
//! small experiments (`cargo xtask demo [SCENARIO]`), and [`step`] runs the textbook's
//! programs one call at a time (`--step`); [`textbook`] runs them whole and [`pairing`]
//! sets their calls beside the real programs' (`--textbook`); [`compare`] sets the five
//! models side by side with their costs (`models`); [`mod@line`] takes their trace lines
//! apart; [`timeline`] puts both sides' calls in an order where nothing comes before its
//! cause; [`text`] prints that as two columns, and [`page`] draws it as an HTML page
//! with an inline SVG picture. [`observe`] watches each exchange from the kernel's side
//! (packets captured on `lo`, socket states); [`packets`] takes the captured frames apart,
//! [`pcap`] writes them as a pcap file and [`wire_view`] lists them under the timeline.
//!
//! `line`, `timeline`, `text`, `page`, `pairing`, `compare`, `predict`, `packets`, `pcap`
//! and `wire_view` are pure; only `scenario`, `observe`, `run`, `step` and `textbook` start processes, open sockets or write files (through
//! `hello_proto::sys`).

pub mod compare;
pub mod line;
pub mod observe;
pub mod packets;
pub mod page;
pub mod pairing;
pub mod pcap;
pub mod predict;
pub mod run;
pub mod scenario;
pub mod step;
pub mod text;
pub mod textbook;
pub mod timeline;
pub mod wire_view;
