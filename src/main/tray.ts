/** Turns the pure tray model (tray-state.ts) into an Electron Tray and Menu. */
import path from 'node:path';
import { Menu, Tray, nativeImage, type MenuItemConstructorOptions } from 'electron';
import {
  trayIconFor,
  trayMenuModel,
  trayTooltip,
  type MaybeStatus,
  type TrayAction,
  type TrayMenuItem,
  type TrayMenuOptions,
} from './tray-state.js';

export type TrayActionHandler = (action: TrayAction) => void;

/** Electron menu template for a model; status lines are shown but not clickable. */
export function menuTemplate(items: TrayMenuItem[], onAction: TrayActionHandler): MenuItemConstructorOptions[] {
  return items.map((item): MenuItemConstructorOptions => {
    switch (item.kind) {
      case 'separator':
        return { type: 'separator' };
      case 'status':
        return { label: item.label, enabled: false };
      case 'action':
        return { label: item.label, enabled: item.enabled, click: () => onAction(item.action) };
    }
  });
}

export interface ZccTray {
  /** Redraws icon, tooltip and menu; `menu` (hidden items) is kept until given again. */
  update(status: MaybeStatus, menu?: TrayMenuOptions): void;
  destroy(): void;
}

export function createTray(iconsDir: string, onAction: TrayActionHandler): ZccTray {
  // macOS menu bars want monochrome template images; elsewhere the coloured icons.
  const template = process.platform === 'darwin';
  const iconPath = (status: MaybeStatus): string => path.join(iconsDir, trayIconFor(status, { template }));

  let currentIcon = iconPath(undefined);
  const tray = new Tray(nativeImage.createFromPath(currentIcon));
  tray.on('click', () => onAction({ type: 'open' }));

  let menuOptions: TrayMenuOptions = {};
  const update = (status: MaybeStatus, menu?: TrayMenuOptions): void => {
    if (menu) menuOptions = menu;
    const next = iconPath(status);
    if (next !== currentIcon) {
      currentIcon = next;
      tray.setImage(nativeImage.createFromPath(next));
    }
    tray.setToolTip(trayTooltip(status));
    tray.setContextMenu(Menu.buildFromTemplate(menuTemplate(trayMenuModel(status, menuOptions), onAction)));
  };
  update(undefined);
  return { update, destroy: () => tray.destroy() };
}
