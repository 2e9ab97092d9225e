import { sdkChoice } from '@strata-cache/provider-test-servers';
import { defineConfig } from 'vitest/config';

// openai 7 (the current major) requires Node >= 22: the suite runs against it there and against
// openai 6 on older Node (STRATA_OPENAI_SDK=6|7 picks one). Sources and tests import `openai`;
// for 6 that name is pointed at the `openai-v6` install.
const { openai } = sdkChoice();

export default defineConfig({
  test: { env: { STRATA_OPENAI_SDK_UNDER_TEST: String(openai.major) } },
  resolve: {
    alias: openai.specifier === 'openai' ? [] : [{ find: /^openai(\/.*)?$/, replacement: `${openai.specifier}$1` }],
  },
});
