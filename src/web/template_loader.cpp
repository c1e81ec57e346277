// Linking and loading: Template, BaseLoader, Loader, DictLoader.
//
// Linking follows Tornado's Template._generate_python: collect the
// {% extends %} ancestors, register every {% block %} from the base down to
// the template itself (the most derived definition wins, blocks inside
// {% include %}d files count too), then emit the base's body with each block
// replaced by its winning definition and each include by the included
// file's body. Cycles and runaway nesting are ParseErrors, not recursion
// without end.
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "web/template_ast.hpp"

namespace squall::web {

namespace detail {
namespace {

/// Upper bound on the nodes of one linked program: includes and blocks
/// copy bodies, and a few templates that each include the next twice
/// would otherwise grow exponentially.
constexpr std::size_t kMaxProgramNodes = std::size_t{1} << 20;

using LoadFn = std::function<std::shared_ptr<const File>(const std::string& name, const File& from, const Node& at)>;

class Linker {
 public:
  Linker(LoadFn load, std::shared_ptr<const TemplateOptions> options)
      : load_(std::move(load)), options_(std::move(options)) {}

  std::shared_ptr<const Program> link(const std::shared_ptr<const File>& root) {
    auto program = std::make_shared<Program>();
    program_ = program.get();
    program->name = root->name;
    program->options = options_;
    std::vector<std::shared_ptr<const File>> ancestors;
    std::vector<std::string> chain{root->name};
    collect_ancestors(root, chain, ancestors);
    for (auto it = ancestors.rbegin(); it != ancestors.rend(); ++it) {
      std::vector<std::string> includes{(*it)->name};
      find_named_blocks(*it, (*it)->body, includes, 0);
    }
    const std::shared_ptr<const File>& base = ancestors.back();
    include_stack_.push_back(base->name);
    emit(base->body, ctx_for(base), program->body, 0, 0);
    return program;
  }

 private:
  [[noreturn]] void error(const File& file, int line, std::string message) {
    throw_parse_error(file.name, line, std::move(message));
  }

  static std::string describe_chain(const std::vector<std::string>& chain, const std::string& last) {
    std::string s;
    for (const auto& n : chain) s += n + " -> ";
    return s + last;
  }

  // Tornado's _get_ancestors: the template, then (for each top-level
  // {% extends %}) the parent's ancestors.
  void collect_ancestors(const std::shared_ptr<const File>& file, std::vector<std::string>& chain,
                         std::vector<std::shared_ptr<const File>>& out) {
    out.push_back(file);
    for (const Node& n : file->body) {
      if (n.kind != NodeKind::Extends) continue;
      std::shared_ptr<const File> parent = load_(n.text, *file, n);
      for (const auto& c : chain) {
        if (c == parent->name) error(*file, n.line, "{% extends %} cycle: " + describe_chain(chain, parent->name));
      }
      if (chain.size() >= options_->max_nesting) error(*file, n.line, "{% extends %} chain too long");
      chain.push_back(parent->name);
      collect_ancestors(parent, chain, out);
      chain.pop_back();
    }
  }

  FileCtx* ctx_for(const std::shared_ptr<const File>& file) {
    auto it = ctx_by_file_.find(file.get());
    if (it != ctx_by_file_.end()) return it->second;
    auto ctx = std::make_unique<FileCtx>();
    ctx->file = file;
    ctx->slot_of.reserve(file->names.size());
    for (const auto& name : file->names) ctx->slot_of.push_back(slot(name));
    ctx->autoescape_slot = file->autoescape ? slot(*file->autoescape) : kNoSlot;
    FileCtx* raw = ctx.get();
    program_->files.push_back(std::move(ctx));
    ctx_by_file_.emplace(file.get(), raw);
    return raw;
  }

  std::uint32_t slot(const std::string& name) {
    auto [it, inserted] = slot_by_name_.emplace(name, static_cast<std::uint32_t>(program_->slot_names.size()));
    if (inserted) program_->slot_names.push_back(name);
    return it->second;
  }

  std::shared_ptr<const File> load_include(const File& from, const Node& n, const std::vector<std::string>& stack) {
    std::shared_ptr<const File> included = load_(n.text, from, n);
    for (const auto& s : stack) {
      if (s == included->name) error(from, n.line, "{% include %} cycle: " + describe_chain(stack, included->name));
    }
    if (stack.size() >= options_->max_nesting) error(from, n.line, "{% include %}s nested too deeply");
    return included;
  }

  void find_named_blocks(const std::shared_ptr<const File>& file, const Body& body, std::vector<std::string>& includes,
                         std::size_t depth) {
    if (depth > options_->max_nesting) error(*file, body.empty() ? 0 : body.front().line, "template nested too deeply");
    for (const Node& n : body) {
      if (++visited_ > kMaxProgramNodes) error(*file, n.line, "template too large once its includes are expanded");
      switch (n.kind) {
        case NodeKind::Block:
          blocks_[n.text] = {&n, ctx_for(file)};
          find_named_blocks(file, n.body, includes, depth + 1);
          break;
        case NodeKind::Include: {
          std::shared_ptr<const File> included = load_include(*file, n, includes);
          includes.push_back(included->name);
          find_named_blocks(included, included->body, includes, depth + 1);
          includes.pop_back();
          break;
        }
        case NodeKind::If:
          for (const auto& [cond, b] : n.branches) find_named_blocks(file, b, includes, depth + 1);
          break;
        case NodeKind::For:
        case NodeKind::While:
        case NodeKind::Try:
        case NodeKind::Apply:
          find_named_blocks(file, n.body, includes, depth + 1);
          find_named_blocks(file, n.else_body, includes, depth + 1);
          find_named_blocks(file, n.except_body, includes, depth + 1);
          find_named_blocks(file, n.finally_body, includes, depth + 1);
          break;
        default:
          break;
      }
    }
  }

  void emit(const Body& body, FileCtx* ctx, PBody& out, std::size_t depth, std::size_t loops) {
    const File& file = *ctx->file;
    if (depth > options_->max_nesting) {
      error(file, body.empty() ? 0 : body.front().line, "template nested too deeply (tags, blocks and includes)");
    }
    for (const Node& n : body) {
      if (++nodes_ > kMaxProgramNodes) error(file, n.line, "template too large once its includes are expanded");
      switch (n.kind) {
        case NodeKind::Text:
        case NodeKind::Output:
        case NodeKind::Set:
          out.push_back(PNode{&n, ctx, {}});
          break;
        case NodeKind::Break:
        case NodeKind::Continue:
          if (loops == 0) {
            error(file, n.line,
                  std::string(n.kind == NodeKind::Break ? "'break'" : "'continue'") + " outside loop");
          }
          out.push_back(PNode{&n, ctx, {}});
          break;
        case NodeKind::If: {
          PNode p{&n, ctx, std::vector<PBody>(n.branches.size())};
          for (std::size_t i = 0; i < n.branches.size(); ++i) emit(n.branches[i].second, ctx, p.bodies[i], depth + 1, loops);
          out.push_back(std::move(p));
          break;
        }
        case NodeKind::For:
        case NodeKind::While: {
          PNode p{&n, ctx, std::vector<PBody>(2)};
          emit(n.body, ctx, p.bodies[0], depth + 1, loops + 1);
          emit(n.else_body, ctx, p.bodies[1], depth + 1, loops);
          out.push_back(std::move(p));
          break;
        }
        case NodeKind::Try: {
          PNode p{&n, ctx, std::vector<PBody>(4)};
          emit(n.body, ctx, p.bodies[0], depth + 1, loops);
          emit(n.except_body, ctx, p.bodies[1], depth + 1, loops);
          emit(n.else_body, ctx, p.bodies[2], depth + 1, loops);
          emit(n.finally_body, ctx, p.bodies[3], depth + 1, loops);
          out.push_back(std::move(p));
          break;
        }
        case NodeKind::Apply: {
          PNode p{&n, ctx, std::vector<PBody>(1)};
          emit(n.body, ctx, p.bodies[0], depth + 1, 0);  // a nested function in Tornado
          out.push_back(std::move(p));
          break;
        }
        case NodeKind::Block: {
          auto it = blocks_.find(n.text);
          const Node* block = it != blocks_.end() ? it->second.first : &n;
          FileCtx* block_ctx = it != blocks_.end() ? it->second.second : ctx;
          for (const auto& active : active_blocks_) {
            if (active == n.text) error(file, n.line, "{% block " + n.text + " %} contains itself");
          }
          active_blocks_.push_back(n.text);
          emit(block->body, block_ctx, out, depth + 1, loops);
          active_blocks_.pop_back();
          break;
        }
        case NodeKind::Include: {
          std::shared_ptr<const File> included = load_include(file, n, include_stack_);
          include_stack_.push_back(included->name);
          emit(included->body, ctx_for(included), out, depth + 1, loops);
          include_stack_.pop_back();
          break;
        }
        case NodeKind::Extends:
          error(file, n.line, "{% extends %} in an included template is not supported");
      }
    }
  }

  LoadFn load_;
  std::shared_ptr<const TemplateOptions> options_;
  Program* program_ = nullptr;
  std::unordered_map<const File*, FileCtx*> ctx_by_file_;
  std::unordered_map<std::string, std::uint32_t> slot_by_name_;
  std::map<std::string, std::pair<const Node*, FileCtx*>> blocks_;
  std::vector<std::string> active_blocks_;
  std::vector<std::string> include_stack_;
  std::size_t nodes_ = 0;
  std::size_t visited_ = 0;
};

/// POSIX normpath: collapses "//", "." and "dir/.."; keeps leading ".."s.
std::string normpath(std::string_view path) {
  bool absolute = !path.empty() && path[0] == '/';
  std::vector<std::string_view> parts;
  std::size_t i = 0;
  while (i <= path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view part = path.substr(i, j - i);
    if (part.empty() || part == ".") {
      // skip
    } else if (part == "..") {
      if (!parts.empty() && parts.back() != "..") parts.pop_back();
      else if (!absolute) parts.push_back(part);
    } else {
      parts.push_back(part);
    }
    i = j + 1;
  }
  std::string out = absolute ? "/" : "";
  for (std::size_t k = 0; k < parts.size(); ++k) {
    if (k) out += '/';
    out += parts[k];
  }
  return out.empty() ? "." : out;
}

}  // namespace
}  // namespace detail

// --- BaseLoader ---------------------------------------------------------------------------------

struct BaseLoader::State {
  std::mutex mu;
  std::shared_ptr<const TemplateOptions> options;
  std::map<std::string, std::shared_ptr<const detail::File>, std::less<>> files;
  std::map<std::string, Template, std::less<>> templates;
};

BaseLoader::BaseLoader(TemplateOptions options) : state_(std::make_unique<State>()) {
  state_->options = std::make_shared<const TemplateOptions>(std::move(options));
}

BaseLoader::~BaseLoader() = default;

const TemplateOptions& BaseLoader::options() const noexcept { return *state_->options; }

std::string BaseLoader::resolve_path(std::string_view name, std::string_view parent_path) const {
  if (!parent_path.empty() && parent_path[0] != '<' && parent_path[0] != '/' && !name.empty() && name[0] != '/') {
    std::size_t slash = parent_path.rfind('/');
    if (slash != std::string_view::npos) {
      std::string joined(parent_path.substr(0, slash + 1));
      joined += name;
      return detail::normpath(joined);
    }
  }
  return detail::normpath(name);
}

void BaseLoader::reset() {
  std::lock_guard lock(state_->mu);
  state_->files.clear();
  state_->templates.clear();
}

namespace {

/// Parses (once) the file `resolved`; the caller holds the loader's lock.
std::shared_ptr<const detail::File> load_file_locked(
    std::map<std::string, std::shared_ptr<const detail::File>, std::less<>>& files, const TemplateOptions& options,
    const std::string& resolved, const std::function<std::optional<std::string>(const std::string&)>& read,
    const detail::File* from, int line) {
  auto it = files.find(resolved);
  if (it != files.end()) return it->second;
  std::optional<std::string> source = read(resolved);
  if (!source) {
    if (from) detail::throw_template_error(from->name, line, "template '" + resolved + "' not found");
    detail::throw_template_error(resolved, 0, "template not found");
  }
  auto file = detail::parse_template(*source, resolved, options);
  files.emplace(resolved, file);
  return file;
}

}  // namespace

Template BaseLoader::load(std::string_view name, std::string_view parent_path) {
  std::string resolved = resolve_path(name, parent_path);
  std::lock_guard lock(state_->mu);
  auto cached = state_->templates.find(resolved);
  if (cached != state_->templates.end()) return cached->second;
  auto read = [this](const std::string& n) { return read_source(n); };
  auto file = load_file_locked(state_->files, *state_->options, resolved, read, nullptr, 0);
  detail::Linker linker(
      [&](const std::string& n, const detail::File& from, const detail::Node& at) {
        return load_file_locked(state_->files, *state_->options, resolve_path(n, from.name), read, &from, at.line);
      },
      state_->options);
  Template t(linker.link(file));
  state_->templates.emplace(resolved, t);
  return t;
}

// --- Template -----------------------------------------------------------------------------------

Template::Template(std::string_view source, std::string name, TemplateOptions options) {
  auto opts = std::make_shared<const TemplateOptions>(std::move(options));
  auto file = detail::parse_template(source, name, *opts);
  detail::Linker linker(
      [](const std::string&, const detail::File& from, const detail::Node& at) -> std::shared_ptr<const detail::File> {
        std::string what = at.kind == detail::NodeKind::Extends ? "extends" : "include";
        detail::throw_parse_error(from.name, at.line, "{% " + what + " %} block found, but no template loader");
      },
      opts);
  program_ = linker.link(file);
}

Template::Template(std::string_view source, std::string name, BaseLoader& loader) {
  BaseLoader::State& state = *loader.state_;
  auto file = detail::parse_template(source, name, *state.options);
  std::lock_guard lock(state.mu);
  auto read = [&loader](const std::string& n) { return loader.read_source(n); };
  detail::Linker linker(
      [&](const std::string& n, const detail::File& from, const detail::Node& at) {
        return load_file_locked(state.files, *state.options, loader.resolve_path(n, from.name), read, &from, at.line);
      },
      state.options);
  program_ = linker.link(file);
}

std::string Template::generate(const nlohmann::json& data, const TemplateNamespace* functions) const {
  std::string out;
  detail::generate_program(*program_, out, data, functions);
  return out;
}

void Template::generate_into(std::string& out, const nlohmann::json& data, const TemplateNamespace* functions) const {
  detail::generate_program(*program_, out, data, functions);
}

const std::string& Template::name() const noexcept { return program_->name; }

// --- Loader, DictLoader -------------------------------------------------------------------------

Loader::Loader(std::string root_directory, TemplateOptions options)
    : BaseLoader(std::move(options)),
      root_(std::filesystem::absolute(root_directory).lexically_normal().string()) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

std::optional<std::string> Loader::read_source(const std::string& name) const {
  std::string_view rel = name;
  while (!rel.empty() && rel.front() == '/') rel.remove_prefix(1);  // root-relative
  if (rel == ".." || rel.starts_with("../") || rel.find('\0') != std::string_view::npos) {
    detail::throw_template_error(name, 0, "template name resolves outside the template root " + root_);
  }
  std::filesystem::path path = std::filesystem::path(root_) / std::filesystem::path(std::string(rel));
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream content;
  content << in.rdbuf();
  return std::move(content).str();
}

DictLoader::DictLoader(std::map<std::string, std::string, std::less<>> templates, TemplateOptions options)
    : BaseLoader(std::move(options)), templates_(std::move(templates)) {}

std::optional<std::string> DictLoader::read_source(const std::string& name) const {
  auto it = templates_.find(name);
  if (it == templates_.end()) return std::nullopt;
  return it->second;
}

}  // namespace squall::web
