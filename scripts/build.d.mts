// Types of scripts/build.mjs, for the tests that drive it.
export declare const BUILD_INPUTS: readonly string[];
export declare const STAMP: string;
export declare function inputsHash(root: string): string;
export declare function tsupBuild(root: string, outDir: string): void;
export declare function ensureBuild(options: {
  root: string;
  force?: boolean;
  build?: (root: string, outDir: string) => void | Promise<void>;
}): Promise<'fresh' | 'built'>;
