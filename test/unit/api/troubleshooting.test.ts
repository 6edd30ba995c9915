/**
 * docs/troubleshooting.md must explain every condition reason the controller and the node agent can
 * set. The reasons are found in the sources with the TypeScript compiler, not with a regular
 * expression: a CamelCase string literal counts when it ends up as a reason, that is when it is
 * - the value of a property, variable or parameter named `reason` (`{ reason: 'TornDown' }`,
 *   `reason: 'PeerNotFound' | 'WaitingForPeer'`, `const reason = ok ? 'A' : 'B'`),
 * - assigned to or compared with something named `reason` (`reservation.reason = 'KernelFragmentation'`),
 * - passed as the argument of a parameter named `reason` (`status.notPlaced('PoolNotFound', ...)`,
 *   `wrap('HugetlbfsMountFailed', ...)`, `new StalledError('X', ...)`), which the type checker resolves
 *   through any helper, so a new helper needs no change here,
 * looking through `?:`, `??`, parentheses and union types on the way.
 */
import { beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DOC = join(ROOT, 'docs', 'troubleshooting.md');
const CAMEL_CASE = /^[A-Z][A-Za-z0-9]*$/;

// Reasons the API server puts in its error Status (`err.reason === 'AlreadyExists'`): the code
// reads them, it never sets them on a condition.
const API_SERVER_REASONS = new Set(['AlreadyExists', 'Conflict', 'NotFound', 'Expired', 'Gone']);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : [];
  });
}

function isNamedReason(name: ts.Node | undefined): boolean {
  return name !== undefined && (ts.isIdentifier(name) || ts.isStringLiteral(name)) && name.text === 'reason';
}

/** Every reason literal of the TypeScript files under `dirs`, with where it is set. */
function reasonsInCode(dirs: readonly string[]): Map<string, string[]> {
  const files = dirs.flatMap(sourceFiles);
  const program = ts.createProgram(files, {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
    types: [],
  });
  const checker = program.getTypeChecker();
  const wanted = new Set(files);
  const found = new Map<string, string[]>();

  const reasonContext = (literal: ts.Node): boolean => {
    let node: ts.Node = literal;
    let parent = node.parent;
    for (;;) {
      const transparent =
        ts.isLiteralTypeNode(parent) ||
        ts.isUnionTypeNode(parent) ||
        ts.isParenthesizedExpression(parent) ||
        ts.isAsExpression(parent) ||
        (ts.isConditionalExpression(parent) && parent.condition !== node) ||
        (ts.isBinaryExpression(parent) && parent.operatorToken.kind === ts.SyntaxKind.QuestionQuestionToken && parent.right === node);
      if (!transparent) break;
      node = parent;
      parent = parent.parent;
    }
    if (
      ts.isPropertyAssignment(parent) ||
      ts.isPropertySignature(parent) ||
      ts.isPropertyDeclaration(parent) ||
      ts.isVariableDeclaration(parent) ||
      ts.isParameter(parent)
    ) {
      return isNamedReason(parent.name);
    }
    if (ts.isBinaryExpression(parent)) {
      const other = parent.left === node ? parent.right : parent.left;
      return isNamedReason(ts.isPropertyAccessExpression(other) ? other.name : other);
    }
    if ((ts.isCallExpression(parent) || ts.isNewExpression(parent)) && parent.arguments?.includes(node as ts.Expression)) {
      const index = parent.arguments.indexOf(node as ts.Expression);
      return checker.getResolvedSignature(parent)?.parameters[index]?.name === 'reason';
    }
    return false;
  };

  for (const file of program.getSourceFiles()) {
    if (!wanted.has(file.fileName)) continue;
    const visit = (node: ts.Node): void => {
      if ((ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) && CAMEL_CASE.test(node.text) && reasonContext(node)) {
        if (!API_SERVER_REASONS.has(node.text)) {
          const line = file.getLineAndCharacterOfPosition(node.getStart()).line + 1;
          found.set(node.text, [...(found.get(node.text) ?? []), `${relative(ROOT, file.fileName)}:${line}`]);
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(file);
  }
  return found;
}

/** Reasons the doc explains: its headings of the form "### `Reason`". */
function reasonsInDoc(): Set<string> {
  const headings = readFileSync(DOC, 'utf8').matchAll(/^#{2,4} `([A-Z][A-Za-z0-9]*)`/gm);
  return new Set([...headings].map((match) => match[1]!));
}

// How reasons are set in this code base, and literals that are not reasons.
const SAMPLE = `
type Verdict = { kind: 'wait'; reason: 'FromUnionType' | 'FromUnionTypeToo' } | { kind: 'free' };
class StepError extends Error {
  constructor(readonly reason: 'FromParameterProperty', message: string) { super(message); }
}
class Builder {
  notPlaced(reason: string, message: string): void { void reason; void message; }
  update(type: string, status: string, reason: string): void { void type; void status; void reason; }
}
const wrap = (reason: string, step: string) => [reason, step];
export function sample(b: Builder, failed: boolean, given?: string): unknown[] {
  b.notPlaced('FromMethodArgument', 'message');
  b.update('NotAReasonType', 'True', 'FromThirdArgument');
  const reason = failed ? 'FromTernary' : 'FromTernaryToo';
  const item: { reason?: string; kind?: string } = { reason: 'FromObjectLiteral', kind: 'NotAReasonKind' };
  item.reason = 'FromAssignment';
  b.update('Ready', 'False', given ?? 'FromNullishDefault');
  return [reason, item, wrap('FromArrowFunctionArgument', 'step'), new StepError('FromParameterProperty', 'x'), item.reason === 'FromComparison', ({} as Verdict)];
}
`;

describe('docs/troubleshooting.md', () => {
  let code: Map<string, string[]>;
  let documented: Set<string>;
  beforeAll(() => {
    code = reasonsInCode([join(ROOT, 'src'), join(ROOT, 'node-agent')]);
    documented = reasonsInDoc();
  });

  test('the scan finds a reason however it is set, and only reasons', () => {
    const dir = mkdtempSync(join(tmpdir(), 'reason-scan-'));
    try {
      writeFileSync(join(dir, 'sample.ts'), SAMPLE);
      expect([...reasonsInCode([dir]).keys()].sort()).toEqual(
        [
          'FromArrowFunctionArgument',
          'FromAssignment',
          'FromComparison',
          'FromMethodArgument',
          'FromNullishDefault',
          'FromObjectLiteral',
          'FromParameterProperty',
          'FromTernary',
          'FromTernaryToo',
          'FromThirdArgument',
          'FromUnionType',
          'FromUnionTypeToo',
        ].sort(),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the scan finds the reasons of the controller, the pool aggregation and the agent', () => {
    // If this fails, the scan lost track of how reasons are set: fix the scan, not the list.
    for (const reason of ['Unschedulable', 'PageSizeMismatch', 'LinkMismatch', 'WaitingForNodeTeardown', 'NoMatchingNodes', 'KernelFragmentation', 'DeviceInUseByHost', 'HugetlbfsMountFailed', 'TornDown']) {
      expect(code.has(reason)).toBe(true);
    }
  });

  test('documents every reason the code sets', () => {
    const missing = [...code].filter(([reason]) => !documented.has(reason)).map(([reason, where]) => `${reason} (set at ${where.join(', ')})`);
    // On failure: add a "#### `Reason`" section to docs/troubleshooting.md saying what it means and what to do.
    expect(missing).toEqual([]);
  });

  test('documents no reason the code no longer sets', () => {
    expect([...documented].filter((reason) => !code.has(reason))).toEqual([]);
  });
});
