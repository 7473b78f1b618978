/**
 * Type-checking with the TypeScript API (typescript 5.9): whole projects (a tsconfig.json) and
 * in-memory snippets taken from Markdown pages.
 */
import { dirname, join, resolve } from 'node:path';
import ts from 'typescript';

export interface Snippet {
  /** A virtual path next to the page it came from, ending in `.ts` (or `.d.ts` for signatures). */
  path: string;
  code: string;
  /** For messages: `docs/how-to/x.md:12`. */
  origin: string;
  /**
   * A fragment (reference pages, or ```ts fragment): the package's exports are in scope without
   * imports, and names the fragment uses without defining them (`bytesFromSocket`, `reply`) are
   * declared `any`. Everything else is still checked: a misspelt export ("did you mean …?"), a
   * wrong argument type, a property that does not exist.
   */
  fragment?: boolean;
  /** Modules whose exports a fragment sees, e.g. `@smtp-edge/protocol`, `@smtp-edge/protocol/node`. */
  preludeModules?: string[];
}

/** TS2304 "Cannot find name 'x'.", and TS2552, the same with "Did you mean 'y'?". */
const CANNOT_FIND_NAME = 2304;
const CANNOT_FIND_NAME_DID_YOU_MEAN = 2552;

/** Edit distance, for telling a misspelt export from a placeholder that merely looks like one. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] as number;
      row[j] = Math.min(
        (row[j] as number) + 1,
        (row[j - 1] as number) + 1,
        previous + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      previous = current;
    }
  }
  return row[b.length] as number;
}

/**
 * In a fragment, an unknown name is a placeholder unless it is one edit away from (or differs only
 * in case from) the name TypeScript suggests: then it is a misspelling and stays an error.
 */
function isPlaceholder(diagnostic: ts.Diagnostic, name: string): boolean {
  if (diagnostic.code === CANNOT_FIND_NAME) return true;
  if (diagnostic.code !== CANNOT_FIND_NAME_DID_YOU_MEAN) return false;
  const suggestion = /Did you mean '([^']+)'/.exec(
    ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'),
  )?.[1];
  if (suggestion === undefined) return true;
  return suggestion.toLowerCase() !== name.toLowerCase() && distance(name, suggestion) > 1;
}

/** Names a snippet declares or imports at its top level. */
function ownTopLevelNames(code: string): Set<string> {
  const file = ts.createSourceFile('snippet.ts', code, ts.ScriptTarget.Latest, true);
  const names = new Set<string>();
  const add = (name: ts.BindingName | ts.Identifier | undefined) => {
    if (!name) return;
    if (ts.isIdentifier(name)) names.add(name.text);
    else for (const element of name.elements) if (!ts.isOmittedExpression(element)) add(element.name);
  };
  for (const statement of file.statements) {
    if (ts.isImportDeclaration(statement)) {
      const clause = statement.importClause;
      add(clause?.name);
      const bindings = clause?.namedBindings;
      if (bindings && ts.isNamespaceImport(bindings)) add(bindings.name);
      if (bindings && ts.isNamedImports(bindings)) for (const el of bindings.elements) add(el.name);
    } else if (ts.isVariableStatement(statement)) {
      for (const d of statement.declarationList.declarations) add(d.name);
    } else if (
      (ts.isFunctionDeclaration(statement) ||
        ts.isClassDeclaration(statement) ||
        ts.isInterfaceDeclaration(statement) ||
        ts.isTypeAliasDeclaration(statement) ||
        ts.isEnumDeclaration(statement) ||
        ts.isModuleDeclaration(statement)) &&
      statement.name &&
      ts.isIdentifier(statement.name)
    ) {
      add(statement.name);
    }
  }
  return names;
}

/** Exported names of each module, split into values and types (for `import` vs `import type`). */
function moduleExports(
  options: ts.CompilerOptions,
  fromDir: string,
  modules: string[],
): Map<string, { module: string; value: boolean }> {
  const probe = join(fromDir, '__exports_probe__.ts');
  const code = modules.map((m, i) => `import * as m${i} from '${m}';`).join('\n');
  const host = ts.createCompilerHost(options, true);
  const { getSourceFile, fileExists } = host;
  host.fileExists = (p) => p === probe || fileExists.call(host, p);
  host.getSourceFile = (p, language, onError, shouldCreate) =>
    p === probe
      ? ts.createSourceFile(p, code, language, true)
      : getSourceFile.call(host, p, language, onError, shouldCreate);
  const program = ts.createProgram({ rootNames: [probe], options, host });
  const checker = program.getTypeChecker();
  const out = new Map<string, { module: string; value: boolean }>();
  const file = program.getSourceFile(probe);
  if (!file) return out;
  file.statements.forEach((statement, i) => {
    if (!ts.isImportDeclaration(statement)) return;
    const moduleSymbol = checker.getSymbolAtLocation(statement.moduleSpecifier);
    if (!moduleSymbol) return;
    for (const symbol of checker.getExportsOfModule(moduleSymbol)) {
      if (out.has(symbol.name) || symbol.name === 'default') continue;
      const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
      out.set(symbol.name, {
        module: modules[i] as string,
        value: (target.flags & ts.SymbolFlags.Value) !== 0,
      });
    }
  });
  return out;
}

/** Imports (after the code, so line numbers stay right) of the exports the fragment does not define itself. */
function prelude(code: string, exportsByName: Map<string, { module: string; value: boolean }>): string {
  const own = ownTopLevelNames(code);
  const byModule = new Map<string, string[]>();
  for (const [name, { module, value }] of exportsByName) {
    if (own.has(name)) continue;
    const list = byModule.get(module) ?? [];
    list.push(value ? name : `type ${name}`);
    byModule.set(module, list);
  }
  return [...byModule]
    .map(([module, names]) => `import { ${names.join(', ')} } from '${module}';`)
    .join('\n');
}

function format(diagnostics: readonly ts.Diagnostic[], origins: Map<string, string> = new Map()): string[] {
  return diagnostics.map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (!d.file || d.start === undefined) return text;
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    const origin = origins.get(d.file.fileName);
    return `${origin ?? d.file.fileName} (snippet line ${line + 1}): ${text}`;
  });
}

export function readProject(tsconfigPath: string): ts.ParsedCommandLine {
  const config = ts.readConfigFile(tsconfigPath, (p) => ts.sys.readFile(p));
  if (config.error) throw new Error(format([config.error]).join('\n'));
  return ts.parseJsonConfigFileContent(config.config, ts.sys, dirname(tsconfigPath));
}

/**
 * The errors of a tsconfig project's own files (not of the library sources they import, which
 * `tsc -p shared` checks), formatted `file:line: message`.
 */
export function checkProject(tsconfigPath: string): { files: string[]; errors: string[] } {
  const parsed = readProject(tsconfigPath);
  const program = ts.createProgram({ rootNames: parsed.fileNames, options: parsed.options });
  const own = new Set(parsed.fileNames.map((f) => resolve(f)));
  const diagnostics = [
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...program
      .getSourceFiles()
      .filter((f) => own.has(resolve(f.fileName)))
      .flatMap((f) => [...program.getSyntacticDiagnostics(f), ...program.getSemanticDiagnostics(f)]),
  ];
  const errors = diagnostics.map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (!d.file || d.start === undefined) return text;
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    return `${d.file.fileName}:${line + 1}: ${text}`;
  });
  return {
    files: parsed.fileNames,
    errors: [...parsed.errors.map((e) => format([e])[0] as string), ...errors],
  };
}

/** Compile snippets in memory with the options of `tsconfigPath`; errors only from the snippets. */
export function checkSnippets(tsconfigPath: string, snippets: Snippet[]): string[] {
  if (snippets.length === 0) return [];
  const fragments = snippets.filter((s) => s.fragment);
  if (fragments.length === 0) return compileSnippets(tsconfigPath, snippets);
  // Fragments: add the package's exports, compile, declare what is still unknown as `any`, compile again.
  const options = readProject(tsconfigPath).options;
  const exportsCache = new Map<string, Map<string, { module: string; value: boolean }>>();
  const withPrelude = snippets.map((s) => {
    if (!s.fragment) return s;
    const modules = s.preludeModules ?? ['@smtp-edge/protocol'];
    const key = modules.join('|');
    let exportsByName = exportsCache.get(key);
    if (!exportsByName) {
      exportsByName = moduleExports(options, dirname(s.path), modules);
      exportsCache.set(key, exportsByName);
    }
    return { ...s, code: `${s.code}\n${prelude(s.code, exportsByName)}\n` };
  });
  const unknown = new Map<string, Set<string>>();
  compileSnippets(tsconfigPath, withPrelude, (path, diagnostic) => {
    const snippet = withPrelude.find((x) => x.path === path);
    if (!snippet?.fragment || !diagnostic.file || diagnostic.start === undefined) return;
    const name = diagnostic.file.text.slice(diagnostic.start, diagnostic.start + (diagnostic.length ?? 0));
    if (!isPlaceholder(diagnostic, name)) return;
    const set = unknown.get(path) ?? new Set<string>();
    set.add(name);
    unknown.set(path, set);
  });
  const declared = withPrelude.map((s) => {
    const names = unknown.get(s.path);
    if (!names) return s;
    return { ...s, code: `${s.code}${[...names].map((n) => `declare const ${n}: any;`).join('\n')}\n` };
  });
  return compileSnippets(tsconfigPath, declared);
}

function compileSnippets(
  tsconfigPath: string,
  snippets: Snippet[],
  observe?: (path: string, diagnostic: ts.Diagnostic) => void,
): string[] {
  const parsed = readProject(tsconfigPath);
  const options: ts.CompilerOptions = {
    ...parsed.options,
    // Each snippet is its own module, and signature snippets (.d.ts) are checked too: errors are
    // collected from the snippet files only, so node_modules declarations stay unchecked.
    moduleDetection: ts.ModuleDetectionKind.Force,
    skipLibCheck: false,
    noUnusedLocals: false,
  };
  const virtual = new Map(snippets.map((s) => [s.path, s.code]));
  const host = ts.createCompilerHost(options, true);
  const { fileExists, readFile, getSourceFile } = host;
  host.fileExists = (p) => virtual.has(p) || fileExists.call(host, p);
  host.readFile = (p) => virtual.get(p) ?? readFile.call(host, p);
  host.getSourceFile = (p, language, onError, shouldCreate) => {
    const code = virtual.get(p);
    if (code !== undefined) return ts.createSourceFile(p, code, language, true);
    return getSourceFile.call(host, p, language, onError, shouldCreate);
  };
  const program = ts.createProgram({ rootNames: [...virtual.keys()], options, host });
  const origins = new Map(snippets.map((s) => [s.path, s.origin]));
  const diagnostics: ts.Diagnostic[] = [
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
  ];
  for (const s of snippets) {
    const file = program.getSourceFile(s.path);
    if (!file) {
      diagnostics.push({
        category: ts.DiagnosticCategory.Error,
        code: 0,
        file: undefined,
        start: undefined,
        length: undefined,
        messageText: `${s.origin}: snippet not compiled`,
      });
      continue;
    }
    const own = [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)];
    for (const d of own) observe?.(s.path, d);
    diagnostics.push(...own);
  }
  return format(diagnostics, origins);
}
