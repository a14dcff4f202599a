// Routes and app-wide providers.

import { BrowserRouter, Route, Routes } from "react-router";
import { Layout } from "./components/Layout";
import { RequireAuth } from "./components/RequireAuth";
import { AccountPage } from "./pages/AccountPage";
import { FilesPage } from "./pages/FilesPage";
import { HomePage } from "./pages/HomePage";
import { NotFoundPage } from "./pages/NotFoundPage";
import { SignInPage } from "./pages/SignInPage";
import { UploadPage } from "./pages/UploadPage";
import { AnnouncerProvider } from "./state/announcer";
import { AuthProvider } from "./state/auth";

export function App() {
  return (
    <BrowserRouter>
      <AnnouncerProvider>
        <AuthProvider>
          <Routes>
            <Route element={<Layout />}>
              <Route index element={<HomePage />} />
              <Route path="signin" element={<SignInPage />} />
              <Route
                path="upload"
                element={
                  <RequireAuth>
                    <UploadPage />
                  </RequireAuth>
                }
              />
              <Route
                path="files"
                element={
                  <RequireAuth>
                    <FilesPage />
                  </RequireAuth>
                }
              />
              <Route
                path="account"
                element={
                  <RequireAuth>
                    <AccountPage />
                  </RequireAuth>
                }
              />
              <Route path="*" element={<NotFoundPage />} />
            </Route>
          </Routes>
        </AuthProvider>
      </AnnouncerProvider>
    </BrowserRouter>
  );
}
