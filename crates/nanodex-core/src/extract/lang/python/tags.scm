; Python: definitions, references and imports for nanodex.
; Capture names: @def.<kind> on the definition node with @name; @ref.<kind> with @name and optional @receiver;
; @import on an import statement (read by mod.rs); @local / @local.member with @local.name and @local.type.

(class_definition name: (identifier) @name) @def.class
(function_definition name: (identifier) @name) @def.function

(call function: (identifier) @name) @ref.call
(call function: (attribute object: (_) @receiver attribute: (identifier) @name)) @ref.call

(raise_statement . (call function: (identifier) @name)) @ref.throw
(raise_statement . (call function: (attribute object: (_) @receiver attribute: (identifier) @name))) @ref.throw
(raise_statement . (identifier) @name) @ref.throw
(raise_statement . (attribute object: (_) @receiver attribute: (identifier) @name)) @ref.throw

(class_definition superclasses: (argument_list (identifier) @name)) @ref.extends
(class_definition superclasses: (argument_list (attribute object: (_) @receiver attribute: (identifier) @name))) @ref.extends

(import_statement) @import
(import_from_statement) @import

(assignment left: (identifier) @local.name right: (call function: (identifier) @local.type)) @local
(assignment left: (attribute object: (identifier) @_self attribute: (identifier) @local.name)
  right: (call function: (identifier) @local.type) (#eq? @_self "self")) @local.member

; Configuration keys read by a literal name: @config.env / @config.property on the read, @config.key on the name.
; Only `os.environ` (or `_os.environ`): a bare `environ` is usually a WSGI request dict, not the process environment.
(call function: (attribute object: (attribute object: (identifier) @_os attribute: (identifier) @_env) attribute: (identifier) @_get)
  arguments: (argument_list . (string) @config.key)
  (#match? @_os "^_?os$") (#eq? @_env "environ") (#any-of? @_get "get" "setdefault")) @config.env
(subscript value: (attribute object: (identifier) @_os attribute: (identifier) @_env) subscript: (string) @config.key
  (#match? @_os "^_?os$") (#eq? @_env "environ")) @config.env
(comparison_operator . (string) @config.key (attribute object: (identifier) @_os attribute: (identifier) @_env) .
  (#match? @_os "^_?os$") (#eq? @_env "environ")) @config.env
(call function: (attribute object: (identifier) @_os attribute: (identifier) @_f) arguments: (argument_list . (string) @config.key)
  (#match? @_os "^_?os$") (#any-of? @_f "getenv" "getenvb")) @config.env
