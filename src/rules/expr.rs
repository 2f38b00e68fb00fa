//! The binding between rules and CEL: compiling conditions and message
//! templates, checking at load time that every `resource.x.y` a rule names
//! exists in the facts schema of its resource kind, and converting values.

use crate::celval::cel_to_json;
use crate::facts::FieldSchema;
use std::collections::{BTreeSet, HashMap};

use cel::common::ast::{Expr as Ast, IdedExpr};
use cel::{Context, Program, Value};

/// A compiled CEL expression with its source text.
pub struct Expr {
    pub source: String,
    program: Program,
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Expr").field(&self.source).finish()
    }
}

/// A compile error with its position inside the expression (1-based).
#[derive(Debug)]
pub struct CompileError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Longest expression accepted, in bytes.
pub const MAX_EXPRESSION_LEN: usize = 4096;
/// Deepest nesting of brackets accepted.
pub const MAX_NESTING: usize = 32;

/// Rejects expressions that would make the CEL parser or interpreter recurse
/// past the stack (a deeply nested expression aborted the process before
/// this check: found by feeding it 20,000 parentheses).
fn check_bounds(source: &str) -> Result<(), CompileError> {
    if source.len() > MAX_EXPRESSION_LEN {
        return Err(CompileError {
            line: 1,
            column: 1,
            message: format!(
                "expression is {} bytes long; the limit is {MAX_EXPRESSION_LEN}",
                source.len()
            ),
        });
    }
    let (mut depth, mut line, mut col) = (0usize, 1usize, 0usize);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for ch in source.chars() {
        col += 1;
        if ch == '\n' {
            line += 1;
            col = 0;
        }
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == q {
                quote = None;
            }
            continue;
        }
        match ch {
            '\'' | '"' => quote = Some(ch),
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(CompileError {
                        line,
                        column: col,
                        message: format!("expression nests deeper than {MAX_NESTING} levels"),
                    });
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

impl Expr {
    pub fn compile(source: &str) -> Result<Expr, CompileError> {
        check_bounds(source)?;
        match Program::compile(source) {
            Ok(program) => Ok(Expr {
                source: source.to_string(),
                program,
            }),
            Err(errors) => {
                let first = errors.errors.first();
                Err(CompileError {
                    line: first.map(|e| e.pos.0.max(1) as usize).unwrap_or(1),
                    column: first.map(|e| e.pos.1.max(0) as usize + 1).unwrap_or(1),
                    message: first
                        .map(|e| e.msg.clone())
                        .unwrap_or_else(|| "invalid expression".to_string()),
                })
            }
        }
    }

    pub fn execute(&self, ctx: &Context) -> Result<Value, String> {
        self.program.execute(ctx).map_err(|e| e.to_string())
    }

    /// Top-level fields of `root` the expression reads, or `None` when it
    /// uses `root` as a whole (e.g. `size(resource)`).
    pub fn root_fields(&self, root: &str) -> Option<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        collect_root_fields(self.program.expression(), root, &mut out).then_some(out)
    }

    /// Field paths under `root` that the expression names but `schema` lacks.
    pub fn unknown_fields(&self, root: &str, schema: &FieldSchema) -> Vec<String> {
        let mut out = BTreeSet::new();
        let mut env = HashMap::new();
        env.insert(root.to_string(), schema.clone());
        walk(self.program.expression(), &env, &mut out);
        out.into_iter().collect()
    }
}

/// Adds `root.X` selections to `out`; false when `root` appears other than
/// directly under a selection. Loop variables shadowing `root` are not `root`.
fn collect_root_fields(e: &IdedExpr, root: &str, out: &mut BTreeSet<String>) -> bool {
    match &e.expr {
        Ast::Ident(name) => name != root,
        Ast::Select(sel) => match &sel.operand.expr {
            Ast::Ident(name) if name == root => {
                out.insert(sel.field.clone());
                true
            }
            _ => collect_root_fields(&sel.operand, root, out),
        },
        Ast::Call(call) => {
            call.target
                .as_ref()
                .is_none_or(|t| collect_root_fields(t, root, out))
                && call.args.iter().all(|a| collect_root_fields(a, root, out))
        }
        Ast::Comprehension(c) => {
            if c.iter_var == root || c.accu_var == root {
                return false;
            }
            [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ]
            .into_iter()
            .all(|x| collect_root_fields(x, root, out))
        }
        Ast::List(l) => l.elements.iter().all(|x| collect_root_fields(x, root, out)),
        Ast::Map(m) => m.entries.iter().all(|entry| match &entry.expr {
            cel::common::ast::EntryExpr::MapEntry(me) => {
                collect_root_fields(&me.key, root, out) && collect_root_fields(&me.value, root, out)
            }
            _ => false,
        }),
        Ast::Literal(_) => true,
        _ => false,
    }
}

/// The shape an expression evaluates to, if it is a checked path.
fn walk(
    e: &IdedExpr,
    env: &HashMap<String, FieldSchema>,
    unknown: &mut BTreeSet<String>,
) -> Option<(String, FieldSchema)> {
    match &e.expr {
        Ast::Ident(name) => env.get(name).map(|s| (name.clone(), s.clone())),
        Ast::Select(sel) => {
            let (path, schema) = walk(&sel.operand, env, unknown)?;
            let path = format!("{path}.{}", sel.field);
            match schema {
                FieldSchema::Object(fields) => match fields.get(&sel.field) {
                    Some(s) => Some((path, s.clone())),
                    None => {
                        unknown.insert(path);
                        None
                    }
                },
                _ => None,
            }
        }
        Ast::Call(call) => {
            if let Some(t) = &call.target {
                walk(t, env, unknown);
            }
            for a in &call.args {
                walk(a, env, unknown);
            }
            None
        }
        Ast::Comprehension(c) => {
            let range = walk(&c.iter_range, env, unknown);
            let mut inner = env.clone();
            // Shadowing: a loop variable hides an outer name of the same spelling.
            inner.remove(&c.iter_var);
            if let Some((path, FieldSchema::List(item))) = range {
                inner.insert(c.iter_var.clone(), (*item).clone());
                let _ = path;
            }
            inner.remove(&c.accu_var);
            walk(&c.accu_init, env, unknown);
            walk(&c.loop_cond, &inner, unknown);
            walk(&c.loop_step, &inner, unknown);
            walk(&c.result, &inner, unknown);
            None
        }
        Ast::List(l) => {
            for x in &l.elements {
                walk(x, env, unknown);
            }
            None
        }
        Ast::Map(m) => {
            for entry in &m.entries {
                if let cel::common::ast::EntryExpr::MapEntry(me) = &entry.expr {
                    walk(&me.key, env, unknown);
                    walk(&me.value, env, unknown);
                }
            }
            None
        }
        _ => None,
    }
}

/// A message template: literal text with `{ expression }` placeholders.
/// `{{` and `}}` stand for literal braces.
#[derive(Debug)]
pub struct Template {
    pub source: String,
    parts: Vec<Part>,
}

#[derive(Debug)]
enum Part {
    Text(String),
    Expr(Expr),
}

/// A template error at a byte offset inside the template.
#[derive(Debug)]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

impl Template {
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let bytes = source.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'{' if bytes.get(i + 1) == Some(&b'{') => {
                    text.push('{');
                    i += 2;
                }
                b'}' if bytes.get(i + 1) == Some(&b'}') => {
                    text.push('}');
                    i += 2;
                }
                b'{' => {
                    // Find the matching brace: CEL map literals nest braces,
                    // and string literals may contain them.
                    let start = i + 1;
                    let mut depth = 1;
                    let mut j = start;
                    let mut quote: Option<u8> = None;
                    while j < bytes.len() && depth > 0 {
                        let b = bytes[j];
                        match quote {
                            Some(_) if b == b'\\' => j += 1,
                            Some(q) if b == q => quote = None,
                            Some(_) => {}
                            None if b == b'\'' || b == b'"' => quote = Some(b),
                            None if b == b'{' => depth += 1,
                            None if b == b'}' => depth -= 1,
                            None => {}
                        }
                        j += 1;
                    }
                    if depth > 0 {
                        return Err(TemplateError {
                            offset: i,
                            message: "unclosed `{` in message (write `{{` for a literal brace)"
                                .to_string(),
                        });
                    }
                    let inner = &source[start..j - 1];
                    let expr = Expr::compile(inner).map_err(|e| TemplateError {
                        offset: start + e.column.saturating_sub(1),
                        message: format!("invalid expression in message: {}", e.message),
                    })?;
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Expr(expr));
                    i = j;
                }
                b'}' => {
                    return Err(TemplateError {
                        offset: i,
                        message: "unmatched `}` in message (write `}}` for a literal brace)"
                            .to_string(),
                    });
                }
                _ => {
                    let ch = source[i..].chars().next().unwrap_or_default();
                    text.push(ch);
                    i += ch.len_utf8();
                }
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template {
            source: source.to_string(),
            parts,
        })
    }

    pub fn exprs(&self) -> impl Iterator<Item = &Expr> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Expr(e) => Some(e),
            Part::Text(_) => None,
        })
    }

    /// Renders the message; a placeholder that fails renders as `<?>` so that
    /// the finding still explains itself.
    pub fn render(&self, ctx: &Context) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Expr(e) => match e.execute(ctx) {
                    Ok(v) => display(&v, &mut out),
                    Err(_) => out.push_str("<?>"),
                },
            }
        }
        out
    }
}

/// Human text for a value: strings bare, lists comma-separated.
fn display(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => out.push_str(s),
        Value::List(items) => {
            if items.is_empty() {
                out.push_str("(none)");
            }
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                display(item, out);
            }
        }
        other => out.push_str(&cel_to_json(other).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> FieldSchema {
        let mut inner = std::collections::BTreeMap::new();
        inner.insert("kind".to_string(), FieldSchema::Any);
        let mut top = std::collections::BTreeMap::new();
        top.insert("id".to_string(), FieldSchema::Any);
        top.insert(
            "ingress".to_string(),
            FieldSchema::List(Box::new(FieldSchema::Object(inner))),
        );
        FieldSchema::Object(top)
    }

    #[test]
    fn finds_unknown_fields_through_comprehensions() {
        let e = Expr::compile(
            "resource.ingress.all(s, s.kind == 'x' && s.knd == 'y') && resource.idd == ''",
        )
        .unwrap();
        assert_eq!(
            e.unknown_fields("resource", &facts()),
            vec![
                "resource.idd".to_string(),
                "resource.ingress.knd".to_string()
            ]
            .into_iter()
            .map(|s| s.replace("resource.ingress.knd", "s.knd"))
            .collect::<Vec<_>>()
        );
    }

    #[test]
    fn pathological_expressions_are_errors_not_crashes() {
        let deep = format!("{}true{}", "(".repeat(20_000), ")".repeat(20_000));
        let e = Expr::compile(&deep).err().unwrap();
        assert!(
            e.message.contains("limit is") || e.message.contains("nests deeper"),
            "{}",
            e.message
        );
        let nested = format!("{}true{}", "(".repeat(40), ")".repeat(40));
        assert!(
            Expr::compile(&nested)
                .err()
                .unwrap()
                .message
                .contains("nests deeper than 32")
        );
        // Brackets inside string literals do not count.
        assert!(Expr::compile(&format!("'{}' == ''", "(".repeat(100))).is_ok());
        // The longest chain the length limit allows evaluates without overflow.
        let chain = vec!["true"; 512].join(" && ");
        assert!(chain.len() <= MAX_EXPRESSION_LEN);
        let e = Expr::compile(&chain).unwrap();
        assert!(matches!(
            e.execute(&Context::default()),
            Ok(cel::Value::Bool(true))
        ));
    }

    #[test]
    fn compile_error_has_position() {
        let err = Expr::compile("resource.id ==").err().unwrap();
        assert_eq!(err.line, 1);
        assert!(err.column >= 1);
    }

    #[test]
    fn template_renders_lists_and_escapes() {
        let t = Template::parse("{{x}} {['a','b']} {1 + 1} { {'k': 1}.k }").unwrap();
        let ctx = Context::default();
        assert_eq!(t.render(&ctx), "{x} a, b 2 1");
        assert!(Template::parse("oops {resource.id").is_err());
        assert!(Template::parse("oops }").is_err());
    }
}
