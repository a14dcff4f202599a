import type { Connectivity } from "./types";

/** The browser's idea of being online: navigator.onLine and the window's online/offline events. */
export function browserConnectivity(): Connectivity {
  return {
    isOnline: () => navigator.onLine,
    subscribe(listener) {
      const online = () => listener(true);
      const offline = () => listener(false);
      window.addEventListener("online", online);
      window.addEventListener("offline", offline);
      return () => {
        window.removeEventListener("online", online);
        window.removeEventListener("offline", offline);
      };
    },
  };
}
