import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import './styles.css';

const root = document.getElementById('root');
if (!root) throw new Error('zcc: #root element missing');

const bridge = window.zcc;
createRoot(root).render(
  <StrictMode>
    {bridge ? (
      <App bridge={bridge} />
    ) : (
      <main className="app">
        <h1>zcc</h1>
        <p className="notice error" role="alert">
          This page must be opened from the zcc tray app.
        </p>
      </main>
    )}
  </StrictMode>,
);
