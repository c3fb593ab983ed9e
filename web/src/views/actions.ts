// Actions that change the coordinator's state. The API refuses them to a viewer token (the
// error it answers is shown); the buttons ask for confirmation first.
import { api } from '../api';
import { showError } from '../app';
import { h } from '../dom';

export function cancelButton(id: string, what: string, done?: () => void): HTMLButtonElement {
  const button = h('button', { type: 'button', className: 'danger', 'data-action': 'cancel',
    'data-id': id }, 'Cancel');
  button.addEventListener('click', async (event) => {
    event.stopPropagation();
    if (!window.confirm(`Cancel ${what}? Its running jobs stop and pending ones never start.`)) {
      return;
    }
    button.disabled = true;
    try {
      const { cancelledJobIds = [] } = await api.cancel(id);
      button.textContent = `cancelled ${cancelledJobIds.length}`;
      done?.();
    } catch (e) {
      showError(`cancel ${id}: ${(e as Error).message}`);
      button.disabled = false;
    }
  });
  return button;
}
