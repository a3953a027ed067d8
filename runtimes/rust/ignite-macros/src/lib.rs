//! `#[ignite::main]`: turns a handler function into the program's entry point.
//!
//! The attribute keeps the function as written and adds two items next to it:
//!
//! * `pub fn __ignite_entry()`, which serves the handler over the pod protocol
//!   (through `ignite::__rt::serve_async` or `serve_sync`); built for
//!   `wasm32`, the same functions instead answer the one invocation envelope
//!   the Wasmtime host passes on stdin, making the program a WASI command;
//! * `fn main()`, which calls it, so a handler in `src/main.rs` is a complete
//!   program.
//!
//! In `src/lib.rs` the `fn main` is unused; the build pipeline adds a binary
//! target whose `main` calls `<crate>::__ignite_entry()`.

use proc_macro::{Delimiter, TokenStream, TokenTree};

/// Marks the function that answers every invocation of the app.
///
/// ```ignore
/// #[ignite::main]
/// async fn handler(req: Request, ctx: Context) -> Result<impl IntoResponse> { ... }
/// ```
///
/// A plain (non-async) `fn` is accepted too and runs on a blocking thread.
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return compile_error("#[ignite::main] takes no arguments");
    }
    let signature = match parse_signature(&item) {
        Ok(signature) => signature,
        Err(message) => return compile_error(message),
    };
    if signature.name == "main" {
        return compile_error(
            "#[ignite::main] provides `fn main` itself; name the handler something else, e.g. `handler`",
        );
    }
    let serve = if signature.is_async {
        "serve_async"
    } else {
        "serve_sync"
    };
    let generated = format!(
        "#[doc(hidden)]\n\
         pub fn __ignite_entry() {{ ::ignite::__rt::{serve}({name}) }}\n\
         #[allow(dead_code)]\n\
         fn main() {{ __ignite_entry() }}\n",
        name = signature.name,
    );
    let mut output = item;
    output.extend(generated.parse::<TokenStream>().expect("generated code parses"));
    output
}

struct Signature {
    name: String,
    is_async: bool,
}

/// Finds `[async] fn <name>` among the item's top-level tokens; attributes,
/// visibility and the body are skipped.
fn parse_signature(item: &TokenStream) -> Result<Signature, &'static str> {
    let mut is_async = false;
    let mut tokens = item.clone().into_iter();
    while let Some(token) = tokens.next() {
        match token {
            TokenTree::Ident(ident) if ident.to_string() == "async" => is_async = true,
            TokenTree::Ident(ident) if ident.to_string() == "fn" => {
                return match tokens.next() {
                    Some(TokenTree::Ident(name)) => Ok(Signature {
                        name: name.to_string(),
                        is_async,
                    }),
                    _ => Err("#[ignite::main] expects `fn <name>(req: Request, ctx: Context)`"),
                };
            }
            TokenTree::Group(group) if group.delimiter() == Delimiter::Brace => break,
            _ => {}
        }
    }
    Err("#[ignite::main] goes on a function: `async fn handler(req: Request, ctx: Context)`")
}

fn compile_error(message: &str) -> TokenStream {
    format!("::core::compile_error!({message:?});")
        .parse()
        .expect("compile_error! parses")
}
