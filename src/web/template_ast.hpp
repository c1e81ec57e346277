// The compiled forms of the template engine, private to src/web/:
//
//  - File: one template source parsed once (template_parser.cpp): a tree of
//    Nodes whose expressions are Expr trees. Names in a File are numbered
//    per file (File::names). Files are immutable and shared by every
//    Program that uses them.
//  - Program: one template linked with its {% extends %} ancestors, blocks
//    and {% include %}s (template_loader.cpp): a tree of PNodes pointing at
//    File nodes, where blocks and includes have been spliced in, each PNode
//    knowing the file it came from (for autoescape, names and errors).
//    Names are numbered per program (slots).
//  - generate() (template_eval.cpp) walks a Program with one Context per
//    call: slots, the output string and the limits.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "squall/web/template.hpp"

namespace squall::web::detail {

using json = nlohmann::json;

// --- expressions ------------------------------------------------------------------------------

enum class ExprKind : std::uint8_t {
  Const,    // constant
  Name,     // name_index
  Attr,     // children[0].name
  Index,    // children[0][children[1]]
  Slice,    // children[0][children[1]:children[2]:children[3]] (null children absent)
  Call,     // children[0](children[1..]); the last keywords.size() arguments are keywords
  Unary,    // op children[0]: Neg, Pos, Not
  Binary,   // children[0] op children[1]: arithmetic
  Compare,  // children[0] cmp_ops[0] children[1] cmp_ops[1] children[2] ... (Python chains)
  And,      // children[0] and children[1]
  Or,       // children[0] or children[1]
  IfElse,   // children[1] if children[0] else children[2]
  List,     // [children...] (tuples too)
  Dict,     // {children[0]: children[1], ...}
};

enum class Op : std::uint8_t {
  Add, Sub, Mul, Div, FloorDiv, Mod, Pow,  // binary
  Neg, Pos, Not,                           // unary
  Eq, Ne, Lt, Le, Gt, Ge, In, NotIn, Is, IsNot,  // comparisons
};

struct Expr {
  ExprKind kind = ExprKind::Const;
  Op op = Op::Add;
  int line = 0;
  std::uint32_t name_index = 0;   // Name: index into File::names
  std::string name;               // Name, Attr: the identifier
  json constant;                  // Const
  std::vector<std::unique_ptr<Expr>> children;
  std::vector<Op> cmp_ops;        // Compare
  std::vector<std::string> keywords;  // Call
};
using ExprPtr = std::unique_ptr<Expr>;

// --- statements -------------------------------------------------------------------------------

enum class NodeKind : std::uint8_t {
  Text,      // text (whitespace already filtered)
  Output,    // {{ expr }} or {% raw expr %} (raw)
  If,        // branches: (condition or null for else, body)
  For,       // targets in expr: body, else_body
  While,     // while expr: body, else_body
  Set,       // targets[0] set_op expr
  Break,
  Continue,
  Try,       // body, except_body, else_body, finally_body (has_* say which exist)
  Apply,     // expr (the function) applied to the output of body
  Block,     // text = name, body
  Include,   // text = name
  Extends,   // text = name
};

/// How a For iterates an object method call (`d.items()` and friends)
/// without building the list.
enum class IterMethod : std::uint8_t { None, Items, Keys, Values };

struct Node;
using Body = std::vector<Node>;

struct Node {
  NodeKind kind = NodeKind::Text;
  int line = 0;
  bool raw = false;                // Output
  Op set_op = Op::Add;             // Set: the operator of "x op= y"
  bool augmented = false;          // Set: "x op= y" rather than "x = y"
  bool has_except = false, has_else = false, has_finally = false;  // Try; has_else: For/While too
  IterMethod iter_method = IterMethod::None;  // For
  std::string text;
  ExprPtr expr;
  std::vector<std::uint32_t> targets;  // For/Set: indexes into File::names
  std::vector<std::pair<ExprPtr, Body>> branches;  // If
  Body body, else_body, except_body, finally_body;
};

/// One parsed template source.
struct File {
  std::string name;
  std::optional<std::string> autoescape;  // the last {% autoescape %}, or the options'
  std::vector<std::string> names;         // every name the file reads or assigns
  Body body;
};

/// Parses `source` (template_parser.cpp). Throws ParseError.
std::shared_ptr<const File> parse_template(std::string_view source, const std::string& name,
                                           const TemplateOptions& options);

/// Parses one expression (for tests of the expression grammar).
ExprPtr parse_expression(std::string_view text, const std::string& name, int line, std::vector<std::string>& names,
                         std::size_t max_nesting);

// --- programs ---------------------------------------------------------------------------------

inline constexpr std::uint32_t kNoSlot = 0xFFFFFFFF;

/// A File as linked into one Program.
struct FileCtx {
  std::shared_ptr<const File> file;
  std::vector<std::uint32_t> slot_of;  // File::names index → Program slot
  std::uint32_t autoescape_slot = kNoSlot;
};

struct PNode;
using PBody = std::vector<PNode>;

struct PNode {
  const Node* node = nullptr;
  const FileCtx* ctx = nullptr;
  std::vector<PBody> bodies;  // If: one per branch; For/While: body, else; Try: body, except, else, finally; Apply: body
};

struct Program {
  std::string name;
  std::vector<std::unique_ptr<FileCtx>> files;
  std::vector<std::string> slot_names;
  PBody body;
  std::shared_ptr<const TemplateOptions> options;
};

/// Renders `program` (template_eval.cpp).
void generate_program(const Program& program, std::string& out, const json& data, const TemplateNamespace* functions);

/// Throws a TemplateError / ParseError located in `file` at `line`.
[[noreturn]] void throw_parse_error(const std::string& file, int line, std::string message);
[[noreturn]] void throw_template_error(const std::string& file, int line, std::string message);

}  // namespace squall::web::detail
