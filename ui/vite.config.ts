import { defineConfig } from "vitest/config";

// Tauri serves ui/dist from inside the app binary; the dev server is only for `npm run dev`.
export default defineConfig({
  clearScreen: false,
  server: { port: 5173, strictPort: true, host: "127.0.0.1" },
  build: { target: "es2022", outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 1200 },
  test: { environment: "jsdom", include: ["src/**/*.test.ts"] },
});
