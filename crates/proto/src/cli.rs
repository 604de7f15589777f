//! The command-line options both programs share, `--trace`, `--trace-format` and `--lang`, as one clap
//! definition each binary flattens into its own (feature `cli`), and the tracer they ask
//! for.

use clap::builder::{PossibleValuesParser, TypedValueParser};

use crate::sys::Tracer;
use crate::trace::{Format, Lang, Role, Selection};

/// `--trace[=textbook]`, `--trace-format text|json` and `--lang en|ko`.
#[derive(Debug, Clone, clap::Args)]
pub struct TraceArgs {
    /// Narrate every socket call on stderr; `--trace textbook`: only the calls the
    /// textbook's program makes (the others are counted at the end).
    #[arg(long, value_name = "textbook", num_args = 0..=1, require_equals = true,
          default_missing_value = "all",
          value_parser = PossibleValuesParser::new(["all", "textbook"]).try_map(|s| Selection::parse(&s)))]
    pub trace: Option<Selection>,

    /// How `--trace` writes: `text`, a line a reader reads (the default); `json`, one
    /// JSON object per call (JSON Lines) a program reads (docs/contract.md).
    #[arg(long, value_name = "text|json", default_value = "text", requires = "trace",
          value_parser = PossibleValuesParser::new(["text", "json"]).try_map(|s| Format::parse(&s)))]
    pub trace_format: Format,

    /// Language of the trace (default: from LC_ALL/LC_MESSAGES/LANG).
    #[arg(long, value_name = "en|ko", value_parser = lang_parser())]
    pub lang: Option<Lang>,
}

/// `--lang en|ko`'s parser, for every program and task that takes it.
pub fn lang_parser() -> impl TypedValueParser<Value = Lang> {
    PossibleValuesParser::new(["en", "ko"]).try_map(|s| Lang::parse(&s))
}

impl TraceArgs {
    /// The tracer these options ask for: on stderr in the chosen language, or off.
    pub fn tracer(&self, role: Role) -> Tracer {
        match self.trace {
            Some(selection) => Tracer::stderr(role, Lang::choose(self.lang), selection, self.trace_format),
            None => Tracer::off(),
        }
    }
}
